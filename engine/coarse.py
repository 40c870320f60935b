"""Coarse-graining at diffusion scale λ: the forward process of predictor-driven diffusion (docs/science.md §3).

Reference: Yasuda & Bischoff, predictor-driven diffusion. The field follows an Ornstein–Uhlenbeck process in
λ with a Laplacian drift, ``dx = a Δx dλ + b dW``, which is exact per Fourier mode (ortho FFT):

    x̂_λ = e^{μ_k λ} x̂_0 + sqrt(Q_k(λ)) ε̂,   Q_k(λ) = b² (e^{2 μ_k λ} − 1) / (2 μ_k)   (b² λ at μ_k = 0),
    μ_k = −a Σ_d 4 sin²(π k_d / N) / h²,   h = L / N   (finite-difference Laplacian; ≈ −a|k|² for small k).

Fine modes are damped first (unlike standard diffusion); as λ grows the field tends to noise with variance
``b²/(2|μ_k|) ∝ 1/k²``. Reference constants: Kolmogorov a = 0.3, b² = 2; Lorenz-96 a = 0.1, b² = 2. The
process acts on *normalized* fields ((x − mean)/std), as in the reference code; ``coarse_grain_physical``
normalizes, applies it, and maps back to physical units. The method is described in docs/science.md
(predictor-driven diffusion); docs/architecture.md places this module among the layers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import xarray as xr

from engine.errors import EngineError
from engine.spectral import ortho_fft, ortho_ifft

Tensor = torch.Tensor

REFERENCE_CONSTANTS = {"kolmogorov": (0.3, 2.0), "lorenz96": (0.1, 2.0)}


def reference_a(ndim: int) -> float:
    """The reference diffusivity a: 0.3 for 2-D Kolmogorov fields, 0.1 for 1-D Lorenz-96."""
    return REFERENCE_CONSTANTS["kolmogorov" if ndim == 2 else "lorenz96"][0]


@dataclass(frozen=True)
class OUProcess:
    """``dx = a Δx dλ + b dW`` on a periodic grid of period ``length`` in each of ``ndim`` trailing dims."""

    a: float = 0.3
    b2: float = 2.0
    ndim: int = 2
    length: float = 2 * math.pi

    def __post_init__(self):
        if self.a < 0 or self.b2 < 0:
            raise EngineError(f"the OU process needs a ≥ 0 and b² ≥ 0, got a = {self.a}, b² = {self.b2}")
        if self.ndim not in (1, 2):
            raise EngineError(f"coarse-graining acts on 1-D or 2-D fields, not {self.ndim}-D")

    def rates(self, n: int, device=None) -> Tensor:
        """``μ_k = −a Σ_d 4 sin²(π k_d/N)/h²`` on the full FFT grid, shape (n,) or (n, n), float64."""
        k = torch.arange(n, device=device, dtype=torch.float64)
        one_d = -4.0 * torch.sin(math.pi * k / n) ** 2 / (self.length / n) ** 2
        lap = one_d if self.ndim == 1 else one_d[:, None] + one_d[None, :]
        return self.a * lap

    def _broadcast(self, lam: float | Tensor) -> float | Tensor:
        """λ as a scalar, or a (batch,) tensor shaped (batch, 1[, 1]) against the mode grid."""
        if isinstance(lam, Tensor):
            return lam.to(torch.float64).reshape(-1, *(1,) * self.ndim)
        return lam

    def damping(self, lam: float | Tensor, n: int, device=None) -> Tensor:
        """``e^{μ_k λ}``: the deterministic factor of mode k; a (batch,) λ gives (batch, *grid)."""
        return torch.exp(self.rates(n, device) * self._broadcast(lam))

    def variance(self, lam: float | Tensor, n: int, device=None) -> Tensor:
        """``Q_k(λ) = b² (e^{2μ_k λ} − 1)/(2μ_k)``, with its limit ``b² λ`` at μ_k = 0; (batch,) λ allowed."""
        mu, lam = self.rates(n, device), self._broadcast(lam)
        safe = torch.where(mu == 0, torch.ones_like(mu), mu)
        limit = self.b2 * lam * torch.ones_like(mu)
        return torch.where(mu == 0, limit, self.b2 * torch.expm1(2 * mu * lam) / (2 * safe))


def check_lambda(lam: float) -> float:
    if not (math.isfinite(lam) and 0.0 <= lam <= 1.0):
        raise EngineError(f"diffusion scale λ must lie in [0, 1], got {lam}")
    return float(lam)


def coarse_grain(x: Tensor, lam: float, process: OUProcess,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``(e^{μλ} x, e^{μλ} x + sqrt(Q(λ)) ε)`` for x: (..., n) or (..., n, n); ε white, drawn from ``generator``."""
    check_lambda(lam)
    n = x.shape[-1]
    if process.ndim == 2 and x.shape[-2] != n:
        raise EngineError(f"coarse-graining needs square fields, got {tuple(x.shape[-2:])}")
    xh = ortho_fft(x.to(torch.float64), process.ndim)
    smooth = ortho_ifft(process.damping(lam, n, x.device) * xh, process.ndim)
    white = torch.randn(x.shape, generator=generator, device=x.device, dtype=torch.float64)
    noise = ortho_ifft(process.variance(lam, n, x.device).sqrt() * ortho_fft(white, process.ndim), process.ndim)
    return smooth.to(x.dtype), (smooth + noise).to(x.dtype)


def surviving_wavenumber(lam: float, n: int, process: OUProcess, threshold: float = 0.5) -> float:
    """Largest |k| along an axis whose amplitude keeps at least ``threshold`` of itself: e^{μ_k λ} ≥ threshold."""
    check_lambda(lam)
    one_axis = OUProcess(process.a, process.b2, 1, process.length).damping(lam, n)[: n // 2 + 1]
    kept = torch.nonzero(one_axis >= threshold).flatten()
    return float(kept.max()) if kept.numel() else 0.0


def damping_table(lams: list[float], n: int, process: OUProcess) -> xr.DataArray:
    """``e^{μ_k λ}`` over (lam, wavenumber) along one axis: which scales survive at each λ."""
    one_axis = OUProcess(process.a, process.b2, 1, process.length)
    rows = np.stack([one_axis.damping(check_lambda(lam), n)[: n // 2 + 1].numpy() for lam in lams])
    return xr.DataArray(rows, dims=("lam", "wavenumber"),
                        coords={"lam": np.asarray(lams, dtype=float), "wavenumber": np.arange(n // 2 + 1)},
                        attrs={"long_name": "amplitude kept, e^(mu_k lambda)", "a": process.a, "b2": process.b2})


class Coarsened(NamedTuple):
    """Fields at scale λ in physical units: the deterministic part, a noisy sample, and the normalization used."""

    smooth: Tensor
    noisy: Tensor
    mean: float
    std: float


def coarse_grain_physical(x: Tensor, lam: float, process: OUProcess,
                          generator: torch.Generator | None = None) -> Coarsened:
    """``coarse_grain`` of fields in physical units: normalized by their mean m and std s (x̃ = (x − m)/s),
    coarse-grained, and mapped back: ``(s e^{μλ} x̃ + m, s (e^{μλ} x̃ + sqrt(Q) ε) + m)``."""
    if not torch.isfinite(x).all():
        raise EngineError("the field has NaN or infinite values; coarse-graining needs finite fields")
    mean, std = float(x.mean()), float(x.std(correction=0)) or 1.0
    smooth, noisy = coarse_grain((x - mean) / std, lam, process, generator)
    return Coarsened(smooth * std + mean, noisy * std + mean, mean, std)
