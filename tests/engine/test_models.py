import pytest
import torch

from engine.errors import EngineError
from engine.models import UNET_SIZES, build_fno, build_unet
from engine.models.unet import CONVS, PERIODIC_CONVS, WrapPad


def _randomized(size):
    torch.manual_seed(0)
    net = build_unet(size)
    with torch.no_grad():  # the head and input gain start at zero; give them weights so the test means something
        for p in net.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.1)
    return net.eval()


@pytest.mark.parametrize("size", ["tiny", "small"])
def test_unet_is_periodic_and_translation_equivariant(size):
    net = _randomized(size)
    factor = 2 ** (len(UNET_SIZES[size][1]) - 1)  # stride-2 levels commute with shifts by this many pixels
    x, t = torch.randn(2, 1, 16, 16), torch.tensor([0.2, 0.7])
    shifted = net(torch.roll(x, shifts=(factor, 3 * factor), dims=(-2, -1)), t)
    assert torch.allclose(shifted, torch.roll(net(x, t), shifts=(factor, 3 * factor), dims=(-2, -1)), atol=1e-5)


def test_unet_output_depends_on_time_and_starts_at_zero():
    x = torch.randn(1, 1, 16, 16)
    assert torch.count_nonzero(build_unet("tiny")(x, torch.tensor([0.3]))) == 0  # zero-initialized head
    net = _randomized("tiny")
    assert not torch.allclose(net(x, torch.tensor([0.1])), net(x, torch.tensor([0.9])))


def test_unet_rejects_bad_shapes_and_sizes():
    net = build_unet("small")
    with pytest.raises(EngineError, match="divisible by 4"):
        net(torch.zeros(1, 1, 18, 18), torch.zeros(1))
    with pytest.raises(EngineError, match="square fields"):
        net(torch.zeros(1, 1, 16, 8), torch.zeros(1))
    with pytest.raises(EngineError, match="model size must be one of"):
        build_unet("huge")


def test_the_fnos_spectral_convolution_with_identity_weights_is_the_exact_low_pass():
    """With ``R_k = I`` on the retained modes K v keeps |k_y| < m, k_x < m of v and drops the rest: a field of the
    modes (k_y, k_x) = (3, 2) and (−5, 1) passes whole at m = 6 (1e-5), the mode (7, 7) is removed, at 32² and 64²."""
    from engine.models.fno import SpectralConv

    conv = SpectralConv(channels=1, modes=6)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[..., 0] = 1.0  # real part 1 on every retained mode, both k_y corners
    for n in (32, 64):
        y, x = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        phase = 2 * torch.pi / n
        kept = torch.cos(phase * (3 * y + 2 * x)) + torch.sin(phase * (-5 * y + x))
        field = (kept + torch.cos(phase * (7 * y + 7 * x)))[None, None].float()
        assert torch.allclose(conv(field), kept[None, None].float(), atol=1e-5), n


def test_the_fno_is_translation_equivariant_and_runs_at_any_resolution():
    net = build_fno("tiny", in_channels=2, out_channels=2)
    x = torch.randn(2, 2, 32, 32, generator=torch.Generator().manual_seed(0))
    shifted = net(torch.roll(x, (3, 5), (-2, -1)))
    assert torch.allclose(shifted, torch.roll(net(x), (3, 5), (-2, -1)), atol=1e-5)
    assert net(torch.randn(1, 2, 64, 64)).shape == (1, 2, 64, 64)
    with pytest.raises(EngineError, match="takes"):
        net(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("ndim, stride", [(1, 1), (1, 2), (2, 1), (2, 2)])
def test_the_periodic_convolution_is_the_circular_padded_one_in_values_and_gradients(ndim, stride):
    """``PeriodicConv*d`` (``WrapPad``'s folded-back gradient) against torch's ``padding_mode="circular"``: the same
    outputs and input and weight gradients, bit for bit; ``WrapPad`` passes gradcheck in float64."""
    torch.manual_seed(0)
    shape = (3, 4) + (12,) * ndim
    ours = PERIODIC_CONVS[ndim](4, 5, 3, stride=stride)
    theirs = CONVS[ndim](4, 5, 3, stride=stride, padding=1, padding_mode="circular")
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(shape, requires_grad=True)
    results = []
    for conv in (ours, theirs):
        out = conv(x)
        results.append((out, *torch.autograd.grad(out.square().sum(), (x, conv.weight))))
    for a, b in zip(*results):
        assert torch.equal(a, b)
    small = torch.randn((2, 2) + (6,) * ndim, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda y: WrapPad.apply(y, 2, ndim), (small,))
