"""Two-scale Lorenz-96 (Lorenz 1996), integrated with RK4, batched over trajectories:

    dX_k/dt     = −X_{k−1}(X_{k−2} − X_{k+1}) − X_k + F − (h c / b) Σ_j Y_{j,k}
    dY_{j,k}/dt = −c b Y_{j+1,k}(Y_{j+2,k} − Y_{j−1,k}) − c Y_{j,k} + (h c / b) X_k

with k cyclic over K slow variables and the J·K fast variables cyclic as one ring (Y_{j,k} at j + J k).
Reference: docs/science.md §3 (PDD: K = 32, J = 4, F = b = c = 10, h = 1, dt = 5·10⁻⁴, saved every 100 steps).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import xarray as xr

from engine.config import Lorenz96Config, options
from engine.data.store import provenance
from engine.errors import EngineError

Tensor = torch.Tensor


def tendencies(x: Tensor, y: Tensor, c: Lorenz96Config) -> tuple[Tensor, Tensor]:
    """Time derivatives of X (batch, K) and Y (batch, J·K)."""
    k_slow, j_fast = x.shape[-1], c.fast_per_slow
    couple = c.coupling * c.time_scale / c.space_scale
    fast_sum = y.reshape(*y.shape[:-1], k_slow, j_fast).sum(-1)
    dx = (-torch.roll(x, 1, -1) * (torch.roll(x, 2, -1) - torch.roll(x, -1, -1)) - x + c.forcing
          - couple * fast_sum)
    dy = (-c.time_scale * c.space_scale * torch.roll(y, -1, -1) * (torch.roll(y, -2, -1) - torch.roll(y, 1, -1))
          - c.time_scale * y + couple * torch.repeat_interleave(x, j_fast, dim=-1))
    return dx, dy


def rk4_step(x: Tensor, y: Tensor, c: Lorenz96Config) -> tuple[Tensor, Tensor]:
    """One classical RK4 step of size ``c.dt``."""
    h = c.dt
    k1 = tendencies(x, y, c)
    k2 = tendencies(x + 0.5 * h * k1[0], y + 0.5 * h * k1[1], c)
    k3 = tendencies(x + 0.5 * h * k2[0], y + 0.5 * h * k2[1], c)
    k4 = tendencies(x + h * k3[0], y + h * k3[1], c)
    return (x + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0]),
            y + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1]))


def simulate_lorenz96(config: Lorenz96Config, callback: Callable[[dict], None] | None = None,
                     select: slice = slice(None)) -> xr.Dataset:
    """``slow(trajectory, time, k)`` and ``fast(trajectory, time, j)`` after a discarded spin-up; ``select``
    integrates only those trajectories of the seeded batch (a cluster task's share)."""
    generator = torch.Generator().manual_seed(config.seed)
    batch, k_slow, n_fast = config.trajectories, config.slow, config.slow * config.fast_per_slow
    x = config.forcing * (1 + 0.01 * torch.randn(batch, k_slow, generator=generator, dtype=torch.float64))
    y = 0.01 * torch.randn(batch, n_fast, generator=generator, dtype=torch.float64)
    x, y = x[select], y[select]
    spin_up_saves = math.ceil(config.spin_up / (config.dt * config.save_every))
    slow, fast = [], []
    for outer in range(spin_up_saves + config.snapshots):
        for _ in range(config.save_every):
            x, y = rk4_step(x, y, config)
        if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
            raise EngineError(f"Lorenz-96 blew up at t = {(outer + 1) * config.dt * config.save_every:.4g}: "
                              "use a smaller dt")
        if outer >= spin_up_saves:
            slow.append(x.float())
            fast.append(y.float())
        if callback is not None:
            callback({"kind": "progress", "step": outer + 1, "steps": spin_up_saves + config.snapshots})
    interval = config.dt * config.save_every
    times = spin_up_saves * interval + interval * (1 + np.arange(config.snapshots))
    return xr.Dataset(
        {"slow": (("trajectory", "time", "k"), torch.stack(slow, 1).numpy(), {"long_name": "slow variables X_k"}),
         "fast": (("trajectory", "time", "j"), torch.stack(fast, 1).numpy(),
                  {"long_name": "fast variables Y_{j,k} at index j + J k"})},
        coords={"trajectory": np.arange(batch)[select], "time": ("time", times, {"units": "model time"}),
                "k": np.arange(k_slow), "j": np.arange(n_fast)},
        attrs=provenance("engine.data.lorenz96", **options(config), scheme="RK4"))
