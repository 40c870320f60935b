import pytest
import torch

from engine.errors import EngineError
from engine.models import UNET_SIZES, build_unet


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
