"""Integrators for the probability-flow ODE ``dX = b dt`` and the SDE ``dX = (b + ε C s) dt + sqrt(2ε) C^½ dW``.

Every sampler takes a drift callable ``drift(t, x) -> tensor`` (an exact Gaussian model or a network
wrapper), a start ``x`` (batch, ..., n, n) and a time grid ``ts`` (steps + 1,) from 0 to 1, and returns
the end state. An optional ``callback(dict(step, t, x))`` sees every step (for previews; the numerics never
print). Both equations share their time marginals for any ε(t) ≥ 0 (docs/science.md §0).

The SDE's diffusion is preconditioned by the source noise covariance C (C = I for white noise): with
``s = ∇ log p_t`` the Fokker–Planck terms ``ε∇·(C∇p) − ∇·(ε C s p)`` still cancel, so the marginals are
unchanged, while ``C s = −E[x0 | x_t]/α`` stays bounded on fine modes where smooth data has almost no
variance (pixel-white dW would need a stiff, unbounded score there).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from engine.errors import EngineError
from engine.schedules import Coefficients, vp_dilation

Tensor = torch.Tensor
Drift = Callable[[Tensor, Tensor], Tensor]
Callback = Callable[[dict], None] | None
DIFFUSION_SHAPES = ("constant", "sine", "alpha2")


class CountedDrift:
    """Wraps a drift and counts its evaluations (NFE)."""

    def __init__(self, drift: Drift):
        self.drift, self.nfe = drift, 0

    def __call__(self, t, x):
        self.nfe += 1
        return self.drift(t, x)


def uniform_grid(steps: int) -> Tensor:
    """``t_i = i / steps``, i = 0..steps (float64)."""
    if steps < 1:
        raise EngineError(f"steps must be at least 1, got {steps}")
    return torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)


def dilated_grid(steps: int, k: float, dimension: int) -> Tensor:
    """Paper 003's VP dilation applied to a uniform grid: half the steps for τ ∈ [0, k/√d], where features are
    decided."""
    tau, _ = vp_dilation(k, dimension)(uniform_grid(steps))
    return tau


def diffusion(shape: str, eps: float, schedule: Callable[[Tensor], Coefficients]) -> Callable[[Tensor], Tensor]:
    """ε(t): ``constant`` ε, ``sine`` ε sin(πt) (vanishes at both ends), ``alpha2`` ε α(t)² (vanishes with the
    noise)."""
    if eps < 0:
        raise EngineError(f"diffusion ε must be ≥ 0, got {eps}")
    if shape == "constant":
        return lambda t: torch.as_tensor(eps, dtype=torch.float64)
    if shape == "sine":
        return lambda t: eps * torch.sin(math.pi * torch.as_tensor(t, dtype=torch.float64))
    if shape == "alpha2":
        return lambda t: eps * schedule(t).alpha ** 2
    raise EngineError(f"diffusion shape must be one of {', '.join(DIFFUSION_SHAPES)}, not {shape!r}")


def sample_euler(drift: Drift, x: Tensor, ts: Tensor, callback: Callback = None) -> Tensor:
    """Forward Euler on ``dX = b dt``: one NFE per step."""
    for i in range(len(ts) - 1):
        x = x + (ts[i + 1] - ts[i]).to(x.dtype) * drift(ts[i], x)
        if callback is not None:
            callback({"step": i + 1, "t": ts[i + 1], "x": x})
    return x


def sample_heun(drift: Drift, x: Tensor, ts: Tensor, callback: Callback = None) -> Tensor:
    """Heun's second-order method (explicit trapezoid): two NFE per step."""
    for i in range(len(ts) - 1):
        h = (ts[i + 1] - ts[i]).to(x.dtype)
        # Euler predictor.
        b0 = drift(ts[i], x)
        x_pred = x + h * b0
        # Trapezoidal corrector.
        x = x + h * 0.5 * (b0 + drift(ts[i + 1], x_pred))
        if callback is not None:
            callback({"step": i + 1, "t": ts[i + 1], "x": x})
    return x


def sample_rk4(drift: Drift, x: Tensor, ts: Tensor, callback: Callback = None) -> Tensor:
    """Classical fourth-order Runge–Kutta on ``dX = b dt`` (paper 000's sampler): four NFE per step,
    ``x + h/6 (k1 + 2 k2 + 2 k3 + k4)`` with ``k1 = b(t, x)``, ``k2 = b(t + h/2, x + h k1/2)``,
    ``k3 = b(t + h/2, x + h k2/2)``, ``k4 = b(t + h, x + h k3)``."""
    for i in range(len(ts) - 1):
        h = (ts[i + 1] - ts[i]).to(x.dtype)
        middle = 0.5 * (ts[i] + ts[i + 1])
        k1 = drift(ts[i], x)
        k2 = drift(middle, x + 0.5 * h * k1)
        k3 = drift(middle, x + 0.5 * h * k2)
        k4 = drift(ts[i + 1], x + h * k3)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        if callback is not None:
            callback({"step": i + 1, "t": ts[i + 1], "x": x})
    return x


def sample_euler_maruyama(drift: Drift, score: Callable[[Tensor, Tensor, Tensor], Tensor], x: Tensor, ts: Tensor,
                          eps: Callable[[Tensor], Tensor],
                          colour_noise: Callable[[Tensor], Tensor], generator: torch.Generator | None = None,
                          callback: Callback = None) -> Tensor:
    """Euler–Maruyama on ``dX = [b + ε(t) C s] dt + sqrt(2ε(t)) C^½ dW``.

    ``score(t, x, b)`` returns the preconditioned score ``C ∇log p_t(x)`` given the drift b already
    evaluated there (a drift-derived score reuses it: one network call per step); ``colour_noise`` maps unit white
    noise to C^½ w (C: the noise's covariance, ``engine.noise.colour`` with its modal variance, or across fields).
    """
    for i in range(len(ts) - 1):
        h = (ts[i + 1] - ts[i]).to(x.dtype)
        e = eps(ts[i]).to(x.dtype)
        update = drift(ts[i], x)
        if float(e) > 0:
            update = update + e * score(ts[i], x, update)
            white = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x + h * update + torch.sqrt(2 * e * h) * colour_noise(white)
        else:
            x = x + h * update
        if callback is not None:
            callback({"step": i + 1, "t": ts[i + 1], "x": x})
    return x
