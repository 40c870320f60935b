"""Stochastic interpolants: ``x_t``, regression targets, the exact Gaussian drift, scores, schedule transfer.

Drift ``b(t, x) = E[α' x0 + β' x1 + γ' z | x_t = x]`` (docs/science.md §0). For stationary Gaussian
noise and data with modal spectra S_n, S_d every Fourier mode is independent and

    b_k(t, x) = c_k(t) x_k,   c_k = (αα' S_n + ββ' S_d + γγ'/N²) / (α² S_n + β² S_d + γ²/N²),

the noise-preconditioned score is ``(C_n ∇log p_t)_k = −(S_n / V_k) x_k`` with ``V_k`` the denominator
(z is white with unit pixel variance, modal variance 1/N²; C_n has pixel-space eigenvalues N² S_n).
``GaussianModel`` is that closed form: the test oracle and the ``analytic`` model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from engine.schedules import Coefficients, Linear
from engine.spectral import apply_mode_matrix

Tensor = torch.Tensor
Drift = Callable[[Tensor, Tensor], Tensor]
INTERIOR = 1e-4  # formulas that divide by α, β or their derivatives are evaluated on [INTERIOR, 1 − INTERIOR]


def _bcast(v: Tensor, x: Tensor) -> Tensor:
    """Reshape a per-sample (B,) or scalar coefficient to broadcast against x: (B, ..., n, n)."""
    v = v.to(x.dtype).to(x.device)
    return v.reshape(v.shape + (1,) * (x.dim() - v.dim())) if v.dim() else v


def interpolate(c: Coefficients, x0: Tensor, x1: Tensor, z: Tensor | None = None) -> Tensor:
    """``x_t = α x0 + β x1 + γ z``."""
    xt = _bcast(c.alpha, x0) * x0 + _bcast(c.beta, x1) * x1
    return xt if z is None else xt + _bcast(c.gamma, z) * z


def velocity_target(c: Coefficients, x0: Tensor, x1: Tensor, z: Tensor | None = None) -> Tensor:
    """Regression target ``α' x0 + β' x1 + γ' z`` whose conditional mean is the drift b."""
    v = _bcast(c.dalpha, x0) * x0 + _bcast(c.dbeta, x1) * x1
    return v if z is None else v + _bcast(c.dgamma, z) * z


def _per_mode(v):
    """A coefficient per sample (B,) as (B, 1, 1) against the (n, n/2 + 1) modes; scalars pass through."""
    return v[..., None, None] if torch.is_tensor(v) and v.dim() else v


def _half(power: Tensor) -> Tensor:
    """The rfft2 half of an (n, n) per-mode array."""
    return power[:, : power.shape[-1] // 2 + 1]


def apply_modal(x: Tensor, gain: Tensor) -> Tensor:
    """Multiply every Fourier mode of x (..., n, n) by a real gain on the rfft2 half-grid (n, n/2 + 1)."""
    n = x.shape[-1]
    return torch.fft.irfft2(torch.fft.rfft2(x) * gain.to(x.dtype), s=(n, n))


@dataclass(frozen=True)
class GaussianModel:
    """Exact drift and score for Gaussian noise (S_n) → Gaussian data (S_d) along a schedule."""

    noise_power: Tensor  # (n, n) modal variance of x0
    data_power: Tensor  # (n, n) modal variance of x1
    schedule: Callable[[Tensor], Coefficients]

    @property
    def n(self) -> int:
        return self.data_power.shape[-1]

    def variance(self, t) -> Tensor:
        """Modal variance of x_t, ``V_k = α² S_n + β² S_d + γ²/N²``, on the rfft2 half-grid (per sample for t: (B,))."""
        c = self.schedule(t)
        return (_per_mode(c.alpha**2) * _half(self.noise_power) + _per_mode(c.beta**2) * _half(self.data_power)
                + _per_mode(c.gamma**2) / self.n**2)

    def gain(self, t) -> Tensor:
        """``c_k(t)`` on the rfft2 half-grid; zero on modes where x_t has no variance."""
        c = self.schedule(t)
        num = (_per_mode(c.alpha_dalpha) * _half(self.noise_power) + _per_mode(c.beta_dbeta) * _half(self.data_power)
               + _per_mode(c.gamma_dgamma) / self.n**2)
        var = self.variance(t)
        return torch.where(var > 0, num / torch.where(var > 0, var, 1.0), 0.0)

    def __call__(self, t, x: Tensor) -> Tensor:
        """Exact drift ``b(t, x)`` for x: (..., n, n)."""
        return apply_modal(x, self.gain(t).to(x.device))

    def score(self, t, x: Tensor, b: Tensor | None = None) -> Tensor:
        """Exact noise-preconditioned score ``C_n ∇log p_t(x) = −F⁻¹[(S_n / V_k) x̂_k]``."""
        var = self.variance(t).to(x.device)
        ratio = _half(self.noise_power).to(x.device) / torch.where(var > 0, var, 1.0)
        return apply_modal(x, -torch.where(var > 0, ratio, 0.0))


@dataclass(frozen=True)
class CrossSpectralModel:
    """The exact drift for stationary Gaussian noise and data of C fields, whose modes are coupled across the
    fields by their C×C cross-spectral matrices S_n(k), S_d(k) (``engine.spectral.modal_cross_spectrum``):
    ``b̂_k = G_k(t) x̂_k``, ``G_k = (αα' S_n + ββ' S_d + γγ'/N² I)(α² S_n + β² S_d + γ²/N² I)⁺`` (⁺: pseudo-inverse,
    so modes without variance get no drift). With one field, or with diagonal S_n and S_d, G_k is ``GaussianModel``'s
    c_k per field."""

    noise_cross: Tensor  # (n, n/2 + 1, C, C) complex
    data_cross: Tensor
    schedule: Callable[[Tensor], Coefficients]

    @property
    def n(self) -> int:
        return self.data_cross.shape[0]

    def _mix(self, a, b, c) -> Tensor:
        eye = torch.eye(self.data_cross.shape[-1], dtype=self.data_cross.dtype, device=self.data_cross.device)
        return a * self.noise_cross + b * self.data_cross + c / self.n**2 * eye

    def covariance(self, t) -> Tensor:
        """The modal covariance of x_t, ``α² S_n + β² S_d + γ²/N² I`` (n, n/2 + 1, C, C), at a scalar t."""
        c = self.schedule(torch.as_tensor(t, dtype=torch.float64))
        return self._mix(float(c.alpha**2), float(c.beta**2), float(c.gamma**2))

    def gain(self, t) -> Tensor:
        """``G_k(t)`` (n, n/2 + 1, C, C) at a scalar t."""
        c = self.schedule(torch.as_tensor(t, dtype=torch.float64))
        num = self._mix(float(c.alpha_dalpha), float(c.beta_dbeta), float(c.gamma_dgamma))
        return num @ torch.linalg.pinv(self.covariance(t), hermitian=True)

    def __call__(self, t, x: Tensor) -> Tensor:
        """The exact drift ``b(t, x)`` for states x: (..., C, n, n)."""
        return apply_mode_matrix(x, self.gain(t).to(x.device))


@dataclass(frozen=True)
class ScoreFromDrift:
    """Preconditioned score of ``x_t = α x0 + β x1`` (γ = 0, Gaussian x0 ~ N(0, C_n)) from its drift:
    ``E[x0|x] = (β b − β' x)/(β α' − β' α)`` and ``C_n ∇log p_t = −E[x0|x] / α`` (Tweedie)."""

    drift: Drift
    schedule: Callable[[Tensor], Coefficients]

    def __call__(self, t, x: Tensor, b: Tensor | None = None) -> Tensor:
        """``C_n ∇log p_t(x)``; pass the drift b at (t, x) when it is already known to save an evaluation."""
        c = self.schedule(torch.as_tensor(t, dtype=torch.float64).clamp(INTERIOR, 1 - INTERIOR))
        b = self.drift(t, x) if b is None else b
        denoised_x0 = (c.beta * b - c.dbeta * x) / (c.beta * c.dalpha - c.dbeta * c.alpha).to(x.dtype)
        return -denoised_x0 / c.alpha.to(x.dtype)


def matching_time(schedule: Callable[[Tensor], Coefficients], ratio: Tensor, iterations: int = 60) -> Tensor:
    """The time s at which ``α(s)/β(s) = ratio`` (α/β decreases from ∞ to 0), by bisection."""
    if isinstance(schedule, Linear):
        return 1.0 / (1.0 + ratio)
    lo, hi = torch.zeros_like(ratio), torch.ones_like(ratio)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        c = schedule(mid)
        above = c.alpha > ratio * c.beta
        lo, hi = torch.where(above, mid, lo), torch.where(above, hi, mid)
    return (lo + hi) / 2


@dataclass(frozen=True)
class ScheduleTransfer:
    """Sample with schedule B a drift trained with schedule A (both γ = 0), without retraining.

    At B's time t find A's time s with the same ``α/β``; there ``y = x α_A(s)/α_B(t)``,
    ``E[x1|x] = (b_A(s, y) − (α_A'/α_A) y)/(β_A' − α_A' β_A/α_A)`` and
    ``b̃(t, x) = (α'/α) x + (β' − α' β/α) E[x1|x]`` (docs/science.md §1, the reference notebook's formula).
    """

    drift: Drift
    trained: Callable[[Tensor], Coefficients]
    target: Callable[[Tensor], Coefficients]

    def __call__(self, t, x: Tensor) -> Tensor:
        t = torch.as_tensor(t, dtype=torch.float64).clamp(INTERIOR, 1 - INTERIOR)
        cb = self.target(t)
        s = matching_time(self.trained, cb.alpha / cb.beta)
        ca = self.trained(s)
        y = x * (ca.alpha / cb.alpha).to(x.dtype)
        x1_hat = (self.drift(s, y) - (ca.dalpha / ca.alpha).to(x.dtype) * y) / (
            ca.dbeta - ca.dalpha * ca.beta / ca.alpha).to(x.dtype)
        return (cb.dalpha / cb.alpha).to(x.dtype) * x + (cb.dbeta - cb.dalpha * cb.beta / cb.alpha).to(x.dtype) * x1_hat
