"""A Fourier neural operator (Li et al. 2021) for periodic 2-D states: paper 001's FNO baseline.

Each layer is ``v ← GELU(W v + K v)`` with ``K v = F⁻¹[R_k · F v]_k``: a learned complex C×C matrix ``R_k`` per
retained wavenumber (|k_x|, |k_y| < ``modes``; the rest of the spectrum is dropped by K and kept by the pointwise W),
between a pointwise lifting to ``width`` channels and a two-layer pointwise projection. No grid coordinates are
appended: on a periodic domain the operator stays translation-equivariant. The weights hold ``modes`` per axis at
any resolution, so a model trained at 64² runs at 128² (the retained modes are the same wavenumbers).
"""
from __future__ import annotations

import torch
from torch import nn

from engine.errors import EngineError

Tensor = torch.Tensor
# width, retained modes per axis, Fourier layers; base is paper 001's FNO (16 modes, width 64, 5 layers)
FNO_SIZES = {"tiny": (16, 12, 4), "small": (32, 16, 4), "base": (64, 16, 5), "large": (128, 24, 5)}


class SpectralConv(nn.Module):
    """``F⁻¹[R_k · F v]`` over the lowest ``modes`` wavenumbers on both axes (both signs of k_y; rfft over x)."""

    def __init__(self, channels: int, modes: int):
        super().__init__()
        self.modes = modes
        scale = 1 / channels
        # (2 k_y corners, in, out, k_y, k_x, real/imaginary)
        self.weight = nn.Parameter(scale * torch.randn(2, channels, channels, modes, modes, 2))

    def forward(self, v: Tensor) -> Tensor:
        n_y, n_x = v.shape[-2:]
        with torch.autocast(device_type=v.device.type, enabled=False):  # FFTs in float32 under bfloat16 autocast
            spectrum = torch.fft.rfft2(v.float(), norm="ortho")
            m_y, m_x = min(self.modes, n_y // 2), min(self.modes, n_x // 2 + 1)
            weight = torch.view_as_complex(self.weight[:, :, :, :m_y, :m_x].contiguous())
            out = torch.zeros_like(spectrum)
            out[..., :m_y, :m_x] = torch.einsum("bixy,ioxy->boxy", spectrum[..., :m_y, :m_x], weight[0])
            out[..., -m_y:, :m_x] = torch.einsum("bixy,ioxy->boxy", spectrum[..., -m_y:, :m_x], weight[1])
            return torch.fft.irfft2(out, s=(n_y, n_x), norm="ortho")


class FNO(nn.Module):
    """``Q ∘ (W_L + K_L) ∘ σ(W_{L−1} + K_{L−1}) ∘ … ∘ σ(W_1 + K_1) ∘ P`` on (batch, in_channels, n, n) →
    (batch, out_channels, n, n). Called as ``net(x, t)`` like the U-Net; it has no time input, so ``t`` is ignored
    (it maps states, not noisy ones)."""

    def __init__(self, in_channels: int = 1, out_channels: int = 1, width: int = 16, modes: int = 12, layers: int = 4):
        super().__init__()
        self.lift = nn.Conv2d(in_channels, width, 1)
        self.spectral = nn.ModuleList(SpectralConv(width, modes) for _ in range(layers))
        self.pointwise = nn.ModuleList(nn.Conv2d(width, width, 1) for _ in range(layers))
        self.project = nn.Sequential(nn.Conv2d(width, 4 * width, 1), nn.GELU(), nn.Conv2d(4 * width, out_channels, 1))
        self.in_channels = in_channels

    def forward(self, x: Tensor, t: Tensor | None = None) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise EngineError(f"the FNO takes (batch, {self.in_channels}, n, n) states, not {tuple(x.shape)}")
        v = self.lift(x)
        for index, (spectral, pointwise) in enumerate(zip(self.spectral, self.pointwise)):
            v = pointwise(v) + spectral(v).to(v.dtype)
            if index < len(self.spectral) - 1:  # no activation after the final Fourier layer (as Li et al.)
                v = nn.functional.gelu(v)
        return self.project(v)


def build_fno(size: str, in_channels: int = 1, out_channels: int = 1) -> FNO:
    """An FNO of a named size (``FNO_SIZES``: width, retained modes per axis, Fourier layers)."""
    if size not in FNO_SIZES:
        raise EngineError(f"model size must be one of {', '.join(FNO_SIZES)}, not {size!r}")
    width, modes, layers = FNO_SIZES[size]
    return FNO(in_channels, out_channels, width, modes, layers)

