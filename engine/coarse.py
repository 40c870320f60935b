"""Coarse-graining at diffusion scale λ: the forward process of predictor-driven diffusion (science.md §3).

Reference: Yasuda & Bischoff, predictor-driven diffusion. The field follows an Ornstein–Uhlenbeck process in
λ with a Laplacian drift, ``dx = a Δx dλ + b dW``, which is exact per Fourier mode (ortho FFT):

    x̂_λ = e^{μ_k λ} x̂_0 + sqrt(Q_k(λ)) ε̂,   Q_k(λ) = b² (e^{2 μ_k λ} − 1) / (2 μ_k)   (b² λ at μ_k = 0),
    μ_k = −a Σ_d 4 sin²(π k_d / N) / h²,   h = L / N   (finite-difference Laplacian; ≈ −a|k|² for small k).

Fine modes are damped first (unlike standard diffusion); as λ grows the field tends to noise with variance
``b²/(2|μ_k|) ∝ 1/k²``. Reference constants: Kolmogorov a = 0.3, b² = 2; Lorenz-96 a = 0.1, b² = 2. The
process acts on *normalized* fields ((x − mean)/std), as in the reference code; ``coarse_grain_dataset``
normalizes, applies it, and maps back to physical units.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import xarray as xr

from engine.data.store import provenance
from engine.errors import EngineError

Tensor = torch.Tensor

REFERENCE_CONSTANTS = {"kolmogorov": (0.3, 2.0), "lorenz96": (0.1, 2.0)}


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
        return torch.where(mu == 0, self.b2 * lam * torch.ones_like(mu), self.b2 * torch.expm1(2 * mu * lam) / (2 * safe))


def ortho_fft(x: Tensor, ndim: int) -> Tensor:
    """Unitary FFT over the last ``ndim`` dims (white noise keeps unit variance per mode)."""
    return torch.fft.fftn(x, dim=tuple(range(-ndim, 0)), norm="ortho")


def ortho_ifft(x: Tensor, ndim: int) -> Tensor:
    """Real part of the unitary inverse FFT over the last ``ndim`` dims."""
    return torch.fft.ifftn(x, dim=tuple(range(-ndim, 0)), norm="ortho").real


def check_lambda(lam: float) -> float:
    if not (math.isfinite(lam) and 0.0 <= lam <= 1.0):
        raise EngineError(f"diffusion scale λ must lie in [0, 1], got {lam}")
    return float(lam)


def coarse_grain(x: Tensor, lam: float, process: OUProcess, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
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


def spatial_dims(da: xr.DataArray) -> tuple[str, ...]:
    """``(y, x)`` for fields, else the last dim (Lorenz-96 ``k`` or ``j``), periodic either way."""
    return ("y", "x") if da.dims[-2:] == ("y", "x") else da.dims[-1:]


def coarse_grain_dataset(ds: xr.Dataset, variable: str, lam: float, process: OUProcess | None = None,
                         seed: int = 0) -> xr.Dataset:
    """``{variable}`` (a noisy coarse sample) and ``{variable}_smooth`` (its deterministic part) at scale λ.

    The field is normalized by its mean and std, coarse-grained, and mapped back to physical units.
    """
    if variable not in ds.data_vars:
        raise EngineError(f"no variable {variable!r}; the dataset has {', '.join(map(str, ds.data_vars))}")
    da = ds[variable]
    dims = spatial_dims(da)
    process = replace(process or OUProcess(), ndim=len(dims))
    values = torch.from_numpy(np.asarray(da.values, dtype=np.float64))
    if not torch.isfinite(values).all():
        raise EngineError(f"{variable} has NaN or infinite values; coarse-graining needs finite fields")
    mean, std = float(values.mean()), float(values.std())
    generator = torch.Generator().manual_seed(seed)
    smooth, noisy = coarse_grain((values - mean) / std, lam, process, generator)
    attrs = {**da.attrs, "lam": lam}
    out = xr.Dataset(
        {variable: (da.dims, (noisy * std + mean).float().numpy(), {**attrs, "part": "e^(mu lambda) x + sqrt(Q) eps"}),
         f"{variable}_smooth": (da.dims, (smooth * std + mean).float().numpy(), {**attrs, "part": "e^(mu lambda) x"})},
        coords={**{name: ds.coords[name] for name in da.dims if name in ds.coords}, "lam": lam},
        attrs={**{f"source_{key}": value for key, value in ds.attrs.items()},
               **provenance("engine.coarse", lam=lam, a=process.a, b2=process.b2, seed=seed,
                            normalization_mean=mean, normalization_std=std)})
    out["lam"].attrs = {"long_name": "diffusion scale λ", "units": "1"}
    return out
