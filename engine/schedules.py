"""Interpolation schedules ``x_t = α(t) x0 + β(t) x1 + γ(t) z`` with their time derivatives.

x0 is noise, x1 data, z white noise, t ∈ [0, 1]. Every schedule returns ``Coefficients``: the values, the
derivatives, and the half-rates ``αα' = ½ d(α²)/dt`` (likewise β, γ), which stay finite where a
square-root schedule's derivative does not (the designed schedule's β' at t = 0, VP's α' at t = 1); the
exact Gaussian drift is written with them. References: docs/science.md §1 (Chen & Vanden-Eijnden, designed and
power-law schedules) and §4 (Aranguri et al., VP/VE and their time dilations).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch

from engine.errors import EngineError
from engine.spectral import finest_held_shell, shell_sum

Tensor = torch.Tensor


class Coefficients(NamedTuple):
    alpha: Tensor
    beta: Tensor
    gamma: Tensor
    dalpha: Tensor
    dbeta: Tensor
    dgamma: Tensor
    alpha_dalpha: Tensor  # ½ d(α²)/dt
    beta_dbeta: Tensor  # ½ d(β²)/dt
    gamma_dgamma: Tensor  # ½ d(γ²)/dt


def _coefficients(alpha, beta, gamma, dalpha, dbeta, dgamma, a_da=None, b_db=None, g_dg=None) -> Coefficients:
    return Coefficients(alpha, beta, gamma, dalpha, dbeta, dgamma,
                        alpha * dalpha if a_da is None else a_da,
                        beta * dbeta if b_db is None else b_db,
                        gamma * dgamma if g_dg is None else g_dg)


def _t(t) -> Tensor:
    return torch.as_tensor(t, dtype=torch.float64)


@dataclass(frozen=True)
class Linear:
    """``α = 1 − t, β = t, γ = 0`` (rectified flow)."""

    name = "linear"

    def __call__(self, t) -> Coefficients:
        t = _t(t)
        zero, one = torch.zeros_like(t), torch.ones_like(t)
        return _coefficients(1 - t, t, zero, -one, one, zero)


@dataclass(frozen=True)
class Trigonometric:
    """Variance preserving ``α = cos(πt/2), β = sin(πt/2)``."""

    name = "vp"

    def __call__(self, t) -> Coefficients:
        t = _t(t)
        w = math.pi / 2
        zero = torch.zeros_like(t)
        cos, sin = torch.cos(w * t), torch.sin(w * t)
        return _coefficients(cos, sin, zero, -w * sin, w * cos, zero)


@dataclass(frozen=True)
class VarPreservingSqrt:
    """Paper 003's VP path ``x_τ = sqrt(1 − τ²) x0 + τ x1`` (τ = t); α' is singular at t = 1, αα' = −t is not."""

    name = "vp_sqrt"

    def __call__(self, t) -> Coefficients:
        t = _t(t)
        alpha = torch.sqrt(torch.clamp(1 - t**2, min=0.0))
        zero, one = torch.zeros_like(t), torch.ones_like(t)
        return _coefficients(alpha, t, zero, -t / alpha, one, zero, a_da=-t)


@dataclass(frozen=True)
class VarianceExploding:
    """Paper 003's VE path in its reference's linear form, ``x_τ = σ_max (1 − τ) x0 + τ x1`` (σ_max = √d there):
    pure noise of std σ_max at τ = 0. Euler removes noise exactly while it dominates (the step multiplies it by
    α(τ + h)/α(τ)); the form ``σ_max sqrt(1 − τ²) x0 + x1`` of our first version was stiff instead: one Euler
    step can shrink α² by at most half, so noise survived the step into t = ½ of the dilated grid."""

    sigma_max: float
    name = "ve"

    def __call__(self, t) -> Coefficients:
        t = _t(t)
        s = self.sigma_max
        zero, one = torch.zeros_like(t), torch.ones_like(t)
        return _coefficients(s * (1 - t), t, zero, -s * one, one, zero)


@dataclass(frozen=True)
class Designed:
    """Scale-adaptive schedule of paper 000: ``α² = (r − r^t)/(r − 1)``, ``β² = (r^t − 1)/(r − 1)``.

    r is the data-to-noise spectral ratio at the highest wavenumber. For r → 1 it tends to α² = 1 − t, β² = t.
    """

    r: float
    name = "designed"

    def __call__(self, t) -> Coefficients:
        t = _t(t)
        if abs(self.r - 1.0) < 1e-8:
            a2, b2 = 1 - t, t
            da2 = -torch.ones_like(t)
        else:
            log_r = math.log(self.r)
            rt = torch.exp(t * log_r)
            a2, b2 = (self.r - rt) / (self.r - 1), (rt - 1) / (self.r - 1)
            da2 = -log_r * rt / (self.r - 1)
        alpha, beta = torch.sqrt(a2.clamp(min=0.0)), torch.sqrt(b2.clamp(min=0.0))
        zero = torch.zeros_like(t)
        return _coefficients(alpha, beta, zero, da2 / (2 * alpha), -da2 / (2 * beta), zero,
                             a_da=da2 / 2, b_db=-da2 / 2)


BETA_FORMS: dict[str, tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]] = {
    "t": (lambda t: t, lambda t: torch.ones_like(t)),
    "t^2": (lambda t: t**2, lambda t: 2 * t),
    "2t^2/(t+1)": (lambda t: 2 * t**2 / (t + 1), lambda t: (2 * t**2 + 4 * t) / (t + 1) ** 2),
    "3t^2/(2t+1)": (lambda t: 3 * t**2 / (2 * t + 1), lambda t: (6 * t**2 + 6 * t) / (2 * t + 1) ** 2),
}


@dataclass(frozen=True)
class PowerLaw:
    """Forecasting family of paper 000: ``x_t = β(t)(x1 − x0) + x0 + σ(1 − t)√t z``, β from ``BETA_FORMS``."""

    beta_form: str = "t"
    sigma: float = 0.0
    name = "powerlaw"

    def __post_init__(self):
        if self.beta_form not in BETA_FORMS:
            raise EngineError(f"beta_form must be one of {', '.join(BETA_FORMS)}, not {self.beta_form!r}")

    def __call__(self, t) -> Coefficients:
        t = _t(t)
        f, df = BETA_FORMS[self.beta_form]
        beta, dbeta = f(t), df(t)
        s = self.sigma
        gamma = s * (1 - t) * torch.sqrt(t)
        dgamma = s * (1 - 3 * t) / (2 * torch.sqrt(t))
        return _coefficients(1 - beta, beta, gamma, -dbeta, dbeta, dgamma,
                             g_dg=s**2 * (1 - t) * (1 - 3 * t) / 2)


def vp_dilation(k: float, d: float) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    """Paper 003's VP time dilation: ``τ = 2kt/√d`` for t < ½, ``k/√d + (1 − k/√d)(2t − 1)`` after; returns (τ, τ')."""
    c = k / math.sqrt(d)
    if not 0 < c < 1:
        raise EngineError(f"VP dilation needs 0 < k/√d < 1, got k={k}, d={d}")

    def tau(t: Tensor) -> tuple[Tensor, Tensor]:
        first = t < 0.5
        return (torch.where(first, 2 * c * t, c + (1 - c) * (2 * t - 1)),
                torch.where(first, 2 * c * torch.ones_like(t), 2 * (1 - c) * torch.ones_like(t)))

    return tau


def ve_dilation(k: float, sigma_max: float) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    """Paper 003's VE time dilation for the linear VE path, with c = k/σ_max: ``τ = 2(1 − c)t`` for t < ½ (the noise
    falls from σ_max to k, where the modes are told apart), ``(1 − c) + c(2t − 1)`` after (from k to 0, where the
    within-mode variance is decided); returns (τ, τ')."""
    c = k / sigma_max
    if not 0 < c < 1:
        raise EngineError(f"VE dilation needs 0 < k/σ_max < 1, got k={k}, σ_max={sigma_max}")

    def tau(t: Tensor) -> tuple[Tensor, Tensor]:
        first = t < 0.5
        return (torch.where(first, 2 * (1 - c) * t, (1 - c) + c * (2 * t - 1)),
                torch.where(first, 2 * (1 - c) * torch.ones_like(t), 2 * c * torch.ones_like(t)))

    return tau


@dataclass(frozen=True)
class Dilated:
    """A base schedule run on dilated time τ(t): coefficients by the chain rule, ``α'(t) = α_b'(τ) τ'(t)``."""

    base: object
    tau: Callable[[Tensor], tuple[Tensor, Tensor]]
    name: str = "dilated"

    def __call__(self, t) -> Coefficients:
        tau, dtau = self.tau(_t(t))
        c = self.base(tau)
        return Coefficients(c.alpha, c.beta, c.gamma, c.dalpha * dtau, c.dbeta * dtau, c.dgamma * dtau,
                            c.alpha_dalpha * dtau, c.beta_dbeta * dtau, c.gamma_dgamma * dtau)


SCHEDULE_KINDS = ("linear", "vp", "ve", "designed", "powerlaw", "vp_dilated", "ve_dilated")


def make_schedule(kind: str, *, dimension: int, r: float | None = None, sigma_max: float | None = None,
                  beta_form: str = "t", gamma_sigma: float = 0.0, dilation_k: float = 5.0):
    """Build a schedule by name. ``dimension`` d is the number of pixels; VE uses σ_max = √d unless given."""
    if kind not in SCHEDULE_KINDS:
        raise EngineError(f"schedule must be one of {', '.join(SCHEDULE_KINDS)}, not {kind!r}")
    sigma_max = math.sqrt(dimension) if sigma_max is None else sigma_max
    if kind == "linear":
        return Linear()
    if kind == "vp":
        return Trigonometric()
    if kind == "ve":
        return VarianceExploding(sigma_max)
    if kind == "designed":
        if r is None or not r > 0:
            raise EngineError("the designed schedule needs r > 0, the data-to-noise spectral ratio at the highest "
                              "wavenumber")
        return Designed(r)
    if kind == "powerlaw":
        return PowerLaw(beta_form, gamma_sigma)
    if kind == "vp_dilated":
        return Dilated(VarPreservingSqrt(), vp_dilation(dilation_k, dimension), "vp_dilated")
    return Dilated(VarianceExploding(sigma_max), ve_dilation(dilation_k, sigma_max), "ve_dilated")


def spectral_ratio_at_highest_wavenumber(data_power: Tensor, noise_power: Tensor) -> float:
    """r = S_data(k_max) / S_noise(k_max) on the finest shell the data holds (``finest_held_shell``: N/2 for a
    full spectrum, 30 for 2/3-dealiased 64² data, whose shells 31 and 32 are empty)."""
    d, m = shell_sum(data_power), shell_sum(noise_power)
    k = finest_held_shell(d)
    return float(d[k] / m[k])
