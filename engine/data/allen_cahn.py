"""Stochastic Allen–Cahn equation on the periodic square [0, 2π)² (paper 000's non-Gaussian test case, in 2-D):

    ∂u/∂t = ν Δu + u − u³ + σ Q^{1/2} ξ,   Q e_k = q_k e_k,   q_k = (1 + ℓ²|k|²)^(−s),

with ξ space-time white noise and e_k = e^{ik·x}/2π. In 2-D, space-white noise (s = 0) gives no function-valued
solution, so the noise is coloured (s > 0); its invariant measure is far from Gaussian (two phases u ≈ ±1 split by
interfaces ≈ √(2ν) wide: pointwise kurtosis ≈ 1.5 at the defaults, where a Gaussian has 3).

Scheme: semi-implicit Euler–Maruyama, pseudo-spectral collocation (the noise drives every mode, so no dealiasing):

    û_{n+1} = (û_n + h F̂(u_n) + σ √h (N/2π) √q_k ξ̂_n) / (1 + h ν |k|²),   F(u) = u − u³,

with ξ_n white noise on the grid (rfft2, ``norm="backward"`` for û and ξ̂ alike). For a linear reaction F = −κu
the scheme's stationary modal variance is exact: with a = (1 − hκ)/(1 + hν|k|²),
``P_k = σ² h q_k / ((2π)² (1 + hν|k|²)² (1 − a²))`` (``norm="forward"``), → σ² q_k / (2(2π)²(ν|k|² + κ)) as
h → 0 (``stationary_modal_variance``; the tests check it). Trajectory i draws its noise from its own generator,
seeded by (seed, i, save index), so shares of a batch and resumed runs reproduce the same paths bit for bit.
docs/science.md §1 has the experiment that uses it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import xarray as xr

from engine.config import AllenCahnConfig, options
from engine.data.runs import run_with_saves, saved_coords
from engine.data.store import provenance, spectrum_variable
from engine.devices import resolve_device
from engine.errors import EngineError
from engine.spectral import rfft_wavenumbers

Tensor = torch.Tensor
NOISE_BLOCK = 16  # time steps of white noise drawn per trajectory at once (bounds the draw's memory)
MAX_VALUE = 10.0  # |u| beyond this means the explicit cubic has gone unstable


def allen_cahn_reaction(u: Tensor) -> Tensor:
    """F(u) = u − u³, the double-well force (wells at u = ±1)."""
    return u - u**3


@dataclass
class StochasticAllenCahn:
    """The equation on an n×n grid; ``reaction`` is F (u − u³; a linear one for the tests)."""

    n: int
    diffusivity: float = 0.01
    noise_amplitude: float = 0.45
    noise_length: float = 0.3
    noise_smoothness: float = 1.5
    reaction: Callable[[Tensor], Tensor] = allen_cahn_reaction
    device: torch.device | str = "cpu"
    dtype: torch.dtype = torch.float64

    def __post_init__(self):
        if self.n < 4 or self.n % 2:
            raise EngineError(f"grid size must be an even number ≥ 4, got {self.n}")
        ky, kx = rfft_wavenumbers(self.n, self.device, self.dtype)
        self.k2 = kx**2 + ky**2
        self.noise_power = (1 + self.noise_length**2 * self.k2) ** (-self.noise_smoothness)  # q_k
        self.noise_root = self.noise_power.sqrt()  # √q_k, read at every step

    def step(self, u_hat: Tensor, white: Tensor, dt: float) -> Tensor:
        """One semi-implicit Euler–Maruyama step of ``u_hat`` (rfft2) driven by grid white noise ``white``."""
        u = torch.fft.irfft2(u_hat, s=(self.n, self.n))
        scale = self.noise_amplitude * math.sqrt(dt) * self.n / (2 * math.pi)
        forcing = dt * torch.fft.rfft2(self.reaction(u)) + scale * self.noise_root * torch.fft.rfft2(white)
        return (u_hat + forcing) / (1 + dt * self.diffusivity * self.k2)

    def stationary_modal_variance(self, kappa: float, dt: float) -> Tensor:
        """The scheme's exact stationary E|û_k|² (``norm="forward"``) for the linear reaction F(u) = −κu."""
        damping = 1 + dt * self.diffusivity * self.k2
        a = (1 - dt * kappa) / damping
        per_step = self.noise_amplitude**2 * dt * self.noise_power / ((2 * math.pi) ** 2 * damping**2)
        return per_step / (1 - a**2)


def noise_generators(*, seed: int, trajectories: range, save: int, device) -> list[torch.Generator]:
    """One generator per trajectory for save interval ``save``, seeded by (seed, trajectory, save)."""
    def generator(trajectory: int) -> torch.Generator:
        key = int(np.random.SeedSequence([seed, trajectory, save]).generate_state(1, np.uint64)[0] >> 1)
        return torch.Generator(device=device).manual_seed(key)
    return [generator(i) for i in trajectories]


def advance_with_noise(eq: StochasticAllenCahn, u_hat: Tensor, *, steps: int, dt: float,
                       generators: list[torch.Generator]) -> Tensor:
    """``steps`` steps of ``eq``, trajectory i's white noise drawn from ``generators[i]`` in blocks of NOISE_BLOCK."""
    n, done = eq.n, 0
    while done < steps:
        block = min(NOISE_BLOCK, steps - done)
        white = torch.stack([torch.randn(block, n, n, generator=g, device=u_hat.device, dtype=eq.dtype)
                             for g in generators], 1)
        for noise in white:
            u_hat = eq.step(u_hat, noise, dt)
        done += block
    return u_hat


def simulate_allen_cahn(config: AllenCahnConfig, callback: Callable[[dict], None] | None = None,
                        state_path: str | Path | None = None, state_every_seconds: float = 20.0,
                        select: slice = slice(None)) -> xr.Dataset:
    """Start ``config.trajectories`` fields at u = 0, integrate ``spin_up`` (to the invariant measure), then save
    ``config.snapshots`` states every ``save_interval``. Resumable from ``state_path`` as ``simulate_kolmogorov``;
    ``select`` integrates a share of the batch (each trajectory's noise is its own, so shares agree bit for bit)."""
    device = resolve_device(config.device)
    n = config.size
    eq = StochasticAllenCahn(n, config.diffusivity, config.noise_amplitude, config.noise_length,
                             config.noise_smoothness, device=device)
    inner = max(1, math.ceil(config.save_interval / config.dt))
    dt = config.save_interval / inner
    members = range(config.trajectories)[select]
    u_hat = torch.zeros(len(members), n, n // 2 + 1, device=device, dtype=torch.complex128)

    def advance(state: Tensor, save: int) -> Tensor:
        generators = noise_generators(seed=config.seed, trajectories=members, save=save, device=device)
        return advance_with_noise(eq, state, steps=inner, dt=dt, generators=generators)

    def largest(state: Tensor, save: int) -> float:
        value = float(torch.fft.irfft2(state, s=(n, n)).abs().amax())
        if not value <= MAX_VALUE:
            raise EngineError(f"the field reached |u| = {value:.3g} at t = {save * config.save_interval:.3g}: the "
                              f"explicit reaction is unstable at dt = {dt:.3g}; lower --dt")
        return value

    fields = run_with_saves(state=u_hat, advance=advance, speed=largest, config=config, device=device,
                            callback=callback, state_path=state_path, state_every_seconds=state_every_seconds)
    return allen_cahn_dataset(fields, config, dt, members)


def allen_cahn_dataset(fields: Tensor, config: AllenCahnConfig, dt: float, members: range) -> xr.Dataset:
    """The order parameter u(trajectory, time, y, x) on [0, 2π)² with its spectrum and provenance."""
    return xr.Dataset(
        {"u": (("trajectory", "time", "y", "x"), fields.numpy(),
               {"long_name": "order parameter u (phases at ±1)", "units": "1"}),
         "spectrum": spectrum_variable(fields, "u")},
        coords=saved_coords(config, members),
        attrs=provenance("engine.data.allen_cahn", **options(config), time_step=dt,
                         equation="du/dt = nu Lap u + u - u^3 + sigma Q^(1/2) xi, q_k = (1 + ell^2 |k|^2)^(-s)",
                         scheme="pseudo-spectral collocation, semi-implicit Euler-Maruyama"))
