"""A periodic U-Net drift network ``b_θ(t, x)``: circular-padded convolutions, FiLM time conditioning.

Doubly periodic fields have no boundary, so every convolution wraps around (``WrapPad``)
and the network is exactly translation-equivariant on the grid. Sizes run from ``tiny`` (a CPU demo that
trains in a minute) to ``large`` (for a GPU).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from engine.errors import EngineError

# size → (base channels, channel multipliers per level, residual blocks per level)
UNET_SIZES = {
    "tiny": (16, (1, 2), 1),  # ~115k parameters: ~15 steps/s at 32², batch 32, on 2 CPU cores
    "small": (32, (1, 2, 2), 1),
    "base": (64, (1, 2, 4), 2),  # paper 001's U-Net width and multipliers
    "large": (128, (1, 2, 2, 4), 2),
}


CONVS = {1: nn.Conv1d, 2: nn.Conv2d}


class WrapPad(torch.autograd.Function):
    """Periodic padding of the last ``ndim`` axes by ``width`` on each side, ``F.pad(mode="circular")``, with its
    gradient folded back in place: the pads' gradients added onto the edges they copy. Autograd's own backward of
    the circular pad (or of slices and a concatenation) fills a zeroed buffer and copies per slice, 28% of a tiny
    U-Net's training step at 64² on CPU (``benchmarks/training.py``); this one copies the interior once (``_fold``)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, width: int, ndim: int) -> torch.Tensor:
        ctx.width, ctx.ndim = width, ndim
        return nn.functional.pad(x, (width,) * (2 * ndim), mode="circular")

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _fold(grad, tuple(range(grad.dim() - ctx.ndim, grad.dim())), ctx.width, fresh=True), None, None


def _fold(grad: torch.Tensor, axes: tuple[int, ...], w: int, fresh: bool) -> torch.Tensor:
    """The gradient of a wrap-pad by ``w`` over ``axes``: each pad's gradient added onto the edge it copies (the
    right pad's onto the first w, the left's onto the last w), the first axis folded first. Only the interior is
    copied (once, when ``fresh``); the pads of the last axis are folded as strips and added on."""
    if not axes:
        return grad.clone() if fresh else grad
    *rest, axis = axes
    n = grad.shape[axis] - 2 * w
    core = _fold(grad.narrow(axis, w, n), tuple(rest), w, fresh=True)
    core.narrow(axis, 0, w).add_(_fold(grad.narrow(axis, n + w, w), tuple(rest), w, fresh=False))
    core.narrow(axis, n - w, w).add_(_fold(grad.narrow(axis, 0, w), tuple(rest), w, fresh=False))
    return core


class _Periodic:
    """A convolution over periodic axes: its input wrap-padded by half the kernel (``WrapPad``), no zero padding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(WrapPad.apply(x, self.kernel_size[0] // 2, len(self.kernel_size)))


class PeriodicConv1d(_Periodic, nn.Conv1d):
    pass


class PeriodicConv2d(_Periodic, nn.Conv2d):
    pass


PERIODIC_CONVS = {1: PeriodicConv1d, 2: PeriodicConv2d}


def _conv(cin: int, cout: int, kernel: int = 3, stride: int = 1, ndim: int = 2) -> nn.Module:
    return PERIODIC_CONVS[ndim](cin, cout, kernel, stride=stride)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


class TimeEmbedding(nn.Module):
    """Sinusoidal features of t ∈ [0, 1] followed by an MLP; ``conditions`` > 1 embeds that many times at once
    (t: (batch, conditions), e.g. the two noise levels of paper 004's pair denoiser)."""

    def __init__(self, dim: int, conditions: int = 1):
        super().__init__()
        self.register_buffer("freqs", torch.exp(torch.linspace(0, math.log(1000.0), dim // 2)), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(conditions * dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t.reshape(t.shape[0], -1, 1) * self.freqs
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=2).flatten(1))


class ResBlock(nn.Module):
    """GroupNorm–SiLU–conv twice, with a per-channel scale and shift from the time embedding (FiLM)."""

    def __init__(self, cin: int, cout: int, tdim: int, ndim: int = 2):
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), _conv(cin, cout, ndim=ndim)
        self.film = nn.Linear(tdim, 2 * cout)
        self.norm2, self.conv2 = _norm(cout), _conv(cout, cout, ndim=ndim)
        self.skip = nn.Identity() if cin == cout else CONVS[ndim](cin, cout, 1)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        film = self.film(temb).reshape(*temb.shape[:1], -1, *(1,) * (x.dim() - 2))
        scale, shift = film.chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(self.act(h))


class UNet(nn.Module):
    """x: (batch, in_channels, n, n), t: (batch,) → (batch, out_channels, n, n); n divisible by 2^(levels−1).

    ``ndim = 1`` makes the same network over periodic 1-D signals (batch, channels, n) (Lorenz-96);
    ``conditions`` > 1 takes t: (batch, conditions).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, channels: int = 32,
                 multipliers: tuple[int, ...] = (1, 2, 2), blocks: int = 1, ndim: int = 2, conditions: int = 1):
        super().__init__()
        if ndim not in CONVS:
            raise EngineError(f"the U-Net works on 1-D or 2-D fields, not {ndim}-D")
        self.levels, self.ndim = len(multipliers), ndim
        tdim = 4 * channels
        self.time = TimeEmbedding(tdim, conditions)
        self.stem = _conv(in_channels, channels, ndim=ndim)
        widths = [channels * m for m in multipliers]
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        cin, skips = channels, []
        for i, w in enumerate(widths):
            level = nn.ModuleList()
            for _ in range(blocks):
                level.append(ResBlock(cin, w, tdim, ndim))
                cin = w
            self.down.append(level)
            skips.append(w)
            self.downsample.append(_conv(w, w, stride=2, ndim=ndim) if i < self.levels - 1 else nn.Identity())
        self.mid = ResBlock(cin, cin, tdim, ndim)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            level = nn.ModuleList()
            for j in range(blocks):
                level.append(ResBlock(cin + (skips[i] if j == 0 else 0), w, tdim, ndim))
                cin = w
            self.up.append(level)
            self.upsample.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), _conv(w, w, ndim=ndim))
                                 if i > 0 else nn.Identity())
        self.head = nn.Sequential(_norm(cin), nn.SiLU(), _conv(cin, out_channels, ndim=ndim))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        # a time-dependent linear map of the input added to the output: for Gaussian data the drift is
        # c(t)·x (exactly so for matched noise), so this skip carries the bulk and the U-Net the rest
        self.input_gain = nn.Linear(tdim, out_channels * in_channels)
        nn.init.zeros_(self.input_gain.weight)
        nn.init.zeros_(self.input_gain.bias)

    def check_input(self, x: torch.Tensor) -> None:
        factor = 2 ** (self.levels - 1)
        if self.ndim == 1:
            if x.dim() != 3 or x.shape[-1] % factor:
                raise EngineError(f"the 1-D U-Net needs signals (batch, channels, n) with n divisible by {factor}, "
                                  f"got shape {tuple(x.shape)}")
        elif x.dim() != 4 or x.shape[-1] != x.shape[-2] or x.shape[-1] % factor:
            raise EngineError(f"the U-Net needs square fields (batch, channels, n, n) with n divisible by {factor}, "
                              f"got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        temb = self.time(t)
        h = self.stem(x)
        skips = []
        for level, down in zip(self.down, self.downsample):
            for block in level:
                h = block(h, temb)
            skips.append(h)
            h = down(h)
        h = self.mid(h, temb)
        for level, up in zip(self.up, self.upsample):
            h = torch.cat([h, skips.pop()], dim=1)
            for block in level:
                h = block(h, temb)
            h = up(h)
        gain = self.input_gain(temb).view(-1, self.head[-1].out_channels, x.shape[1])
        return self.head(h) + torch.einsum("boi,bi...->bo...", gain, x)


def activation_bytes(size: str, pixels: int) -> float:
    """A training step's memory for one sample of ``pixels`` grid points, estimated from the U-Net's widths: each
    residual block keeps ~12 float32 tensors of its width at its resolution, in the encoder and the decoder."""
    width, multipliers, blocks = UNET_SIZES[size]
    channels_per_pixel = sum(width * m / 4**level for level, m in enumerate(multipliers))
    return 2 * blocks * 12 * 4 * channels_per_pixel * pixels


def build_unet(size: str, in_channels: int = 1, out_channels: int = 1, ndim: int = 2, conditions: int = 1) -> UNet:
    """A U-Net of a named size (see ``UNET_SIZES``) over ``ndim``-D periodic fields."""
    if size not in UNET_SIZES:
        raise EngineError(f"model size must be one of {', '.join(UNET_SIZES)}, not {size!r}")
    channels, multipliers, blocks = UNET_SIZES[size]
    return UNet(in_channels, out_channels, channels, multipliers, blocks, ndim, conditions)
