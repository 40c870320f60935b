"""Closed-form statistics of samplers run on the exact Gaussian drift (docs/science.md §0, the exact Gaussian oracle).

Per Fourier mode the exact drift is linear, ``b_k = c_k(t) x_k``, so each Euler step multiplies mode k by
``1 + h c_k(t)``, each Heun step by ``1 + h/2 (c_k(t) + c_k(t+h)) + h²/2 c_k(t) c_k(t+h)``, and an
Euler–Maruyama step (noise preconditioned by the source covariance, see ``engine.samplers``) maps the modal
variance ``v ↦ (1 + h(c_k − ε S_n/V_k))² v + 2εh S_n``. These give the
generated spectrum with no sampling noise: the test oracle and the first teaching demo.
"""
from __future__ import annotations

from typing import Callable

import torch

from engine.interpolants import CrossSpectralModel, GaussianModel, _half
from engine.spectral import shell_sum, spectral_errors

Tensor = torch.Tensor


def _full(half: Tensor, n: int) -> Tensor:
    """Rebuild an (n, n) per-mode array from its rfft2 half, using the symmetry k ↔ −k."""
    full = torch.empty(n, n, dtype=half.dtype)
    full[:, : n // 2 + 1] = half
    ky = (-torch.arange(n)) % n
    full[:, n // 2 + 1:] = half[ky][:, 1: n - n // 2].flip(-1)
    return full


def euler_multipliers(model: GaussianModel, ts: Tensor) -> Tensor:
    """Product over steps of ``(1 + h c_k(t_i))``, per mode (rfft2 half-grid)."""
    out = torch.ones_like(model.gain(0.0))
    for i in range(len(ts) - 1):
        out = out * (1 + (ts[i + 1] - ts[i]) * model.gain(ts[i]))
    return out


def heun_multipliers(model: GaussianModel, ts: Tensor) -> Tensor:
    """Product over steps of the Heun amplification factor, per mode."""
    out = torch.ones_like(model.gain(0.0))
    for i in range(len(ts) - 1):
        h, c0, c1 = ts[i + 1] - ts[i], model.gain(ts[i]), model.gain(ts[i + 1])
        out = out * (1 + 0.5 * h * (c0 + c1) + 0.5 * h * h * c0 * c1)
    return out


def rk4_multipliers(model: GaussianModel, ts: Tensor) -> Tensor:
    """Product over steps of RK4's amplification of the mode equation ``x' = c_k(t) x``, per mode:
    ``1 + h/6 (a1 + 2 a2 + 2 a3 + a4)`` with ``a1 = c(t)``, ``a2 = c(t + h/2)(1 + h a1/2)``,
    ``a3 = c(t + h/2)(1 + h a2/2)``, ``a4 = c(t + h)(1 + h a3)``."""
    out = torch.ones_like(model.gain(0.0))
    for i in range(len(ts) - 1):
        h = ts[i + 1] - ts[i]
        c0, c_half, c1 = model.gain(ts[i]), model.gain(0.5 * (ts[i] + ts[i + 1])), model.gain(ts[i + 1])
        a1 = c0
        a2 = c_half * (1 + 0.5 * h * a1)
        a3 = c_half * (1 + 0.5 * h * a2)
        a4 = c1 * (1 + h * a3)
        out = out * (1 + h / 6 * (a1 + 2 * a2 + 2 * a3 + a4))
    return out


def euler_cross_multipliers(model: CrossSpectralModel, ts: Tensor) -> Tensor:
    """Euler's map of every mode of a multi-field state, the ordered product ``A_k = Π_i (I + h_i G_k(t_i))`` (later
    steps on the left): (n, n/2 + 1, C, C)."""
    channels = model.data_cross.shape[-1]
    out = torch.eye(channels, dtype=torch.complex128).expand_as(model.data_cross).clone()
    for i in range(len(ts) - 1):
        step = torch.eye(channels, dtype=torch.complex128) + (ts[i + 1] - ts[i]) * model.gain(ts[i])
        out = step @ out
    return out


def euler_cross_spectrum(model: CrossSpectralModel, ts: Tensor) -> Tensor:
    """The modal cross-spectral matrix of Euler samples started from the noise: ``A_k S_n(k) A_kᴴ``."""
    a = euler_cross_multipliers(model, ts)
    return a @ model.noise_cross.to(torch.complex128) @ a.conj().transpose(-2, -1)


def euler_maruyama_variance(model: GaussianModel, ts: Tensor, eps: Callable[[Tensor], Tensor],
                            initial: Tensor) -> Tensor:
    """Modal variance after Euler–Maruyama with the exact drift and score, from ``initial`` (rfft2 half)."""
    s_n = _half(model.noise_power)
    v = initial.clone()
    for i in range(len(ts) - 1):
        h, e = ts[i + 1] - ts[i], eps(ts[i])
        var = model.variance(ts[i])
        ratio = torch.where(var > 0, s_n / torch.where(var > 0, var, 1.0), 0.0)
        v = (1 + h * (model.gain(ts[i]) - e * ratio)) ** 2 * v + 2 * e * h * s_n
    return v


def generated_power(model: GaussianModel, ts: Tensor, integrator: str = "euler",
                    eps: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """Expected modal variance (n, n) of samples started from the model's noise."""
    initial = _half(model.noise_power)
    if integrator == "euler":
        half = initial * euler_multipliers(model, ts) ** 2
    elif integrator == "heun":
        half = initial * heun_multipliers(model, ts) ** 2
    elif integrator == "rk4":
        half = initial * rk4_multipliers(model, ts) ** 2
    elif integrator == "sde":
        half = euler_maruyama_variance(model, ts, eps, initial)
    else:
        raise ValueError(f"unknown integrator {integrator!r}")
    return _full(half, model.n)


def exact_spectral_errors(model: GaussianModel, ts: Tensor, integrator: str = "euler",
                          eps: Callable[[Tensor], Tensor] | None = None) -> dict[str, float]:
    """Spectral error of the expected generated spectrum against the data's (no sampling noise)."""
    gen = shell_sum(generated_power(model, ts, integrator, eps))
    return spectral_errors(gen, shell_sum(model.data_power), model.n)


def expected_drift_norm(model: GaussianModel, ts: Tensor) -> Tensor:
    """RMS drift per pixel along the path, ``sqrt(Σ_k c_k(t)² V_k(t))`` (full grid), for each t in ts."""
    return torch.stack([torch.sqrt((_full(model.gain(t) ** 2 * model.variance(t), model.n)).sum()) for t in ts])


def drift_lipschitz(model: GaussianModel, ts: Tensor) -> Tensor:
    """``max_k |c_k(t)|``: the drift's Lipschitz constant, which sets the step size an explicit integrator needs.
    It stays ≤ 1 on the linear path when the noise matches the data; at scales where the noise is rougher than
    the data (white noise on smooth fields) it grows like 1/(1 − t) toward the data end, and where it is smoother
    like 1/t near the noise end (measured on the shipped Kolmogorov set: 100 at t = 0.99 for white noise, 100 at
    t = 0.01 for power-law noise p = 8)."""
    return torch.stack([model.gain(t).abs().max() for t in ts])


def snr_map(schedule, noise_power: Tensor, data_power: Tensor, ts: Tensor) -> Tensor:
    """``log10(β(t)² S_d(k) / α(t)² S_n(k))`` per shell k ≥ 1 (rows) and time t (columns), clipped to [−8, 8]:
    which scales the interpolant has decided by time t (positive: data dominates)."""
    c = schedule(ts)
    noise, data = shell_sum(noise_power)[1:], shell_sum(data_power)[1:]
    ratio = (c.beta[None, :] ** 2 * data[:, None]) / (c.alpha[None, :] ** 2 * noise[:, None] + 1e-300)
    return torch.log10(ratio + 1e-300).clamp(-8, 8)
