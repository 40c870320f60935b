"""Two-layer quasi-geostrophic flow on a doubly periodic β-plane (paper 004's jet; pyqg's conventions).

Potential-vorticity anomalies of the upper and lower layers (depths H₁, H₂, δ = H₁/H₂):

    q₁ = ∇²ψ₁ + F₁(ψ₂ − ψ₁),   q₂ = ∇²ψ₂ + F₂(ψ₁ − ψ₂),   F₁ = 1/(r_d²(1 + δ)),  F₂ = δ F₁,
    ∂q_i/∂t + J(ψ_i, q_i) + U_i ∂q_i/∂x + Q_{y,i} ∂ψ_i/∂x = −δ_{i2} r_ek ∇²ψ₂,

with background flows U_i, background PV gradients ``Q_{y,1} = β + F₁(U₁ − U₂)``, ``Q_{y,2} = β − F₂(U₁ − U₂)``,
``J(a, b) = a_x b_y − a_y b_x`` and velocity ``(u, v) = (−∂ψ/∂y, ∂ψ/∂x)``. Pseudo-spectral on the rfft2 grid of
[0, L)², products from 2/3-dealiased fields, classical RK4 in time, and pyqg's exponential filter at the smallest
scales (its small-scale dissipation). Batched over trajectories, in torch, on CUDA when the state is there.

The energy ``E = ½ Σ_i (H_i/H) ⟨|∇ψ_i|²⟩ + ½ (H₁/H) F₁ ⟨(ψ₁ − ψ₂)²⟩`` changes only by baroclinic generation
``(H₁/H) F₁ (U₁ − U₂) ⟨ψ₁ ∂ψ₂/∂x⟩``, bottom drag ``−(H₂/H) r_ek ⟨|∇ψ₂|²⟩`` and the filter (``energy_budget``).
docs/science.md §5 has the setup; the tests check Rossby-wave dispersion and this budget.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import xarray as xr

from engine.config import QGConfig, options
from engine.data.runs import run_with_saves, saved_coords
from engine.data.store import provenance, spectrum_variable
from engine.devices import resolve_device
from engine.errors import EngineError
from engine.spectral import rfft_wavenumbers, two_thirds_dealias

Tensor = torch.Tensor
FILTER_FACTOR, FILTER_CUTOFF = 23.6, 0.65 * math.pi  # pyqg's exponential filter: exp(−a (κ − κ_c)⁴) above κ_c
LAYERS = ("upper", "lower")


@dataclass
class TwoLayerQG:
    """The equations on an n×n grid of side ``length`` (m), in Fourier space (rfft2 of q, ``norm="backward"``);
    ``delta`` = H₁/H₂, ``rd`` the deformation radius (m), ``rek`` the bottom drag (1/s)."""

    n: int
    length: float = 1e6
    beta: float = 1e-11
    rek: float = 7e-8
    delta: float = 0.1
    rd: float = 15e3
    upper_flow: float = 0.025
    lower_flow: float = 0.0
    filtered: bool = True
    device: torch.device | str = "cpu"
    dtype: torch.dtype = torch.float64

    def __post_init__(self):
        if self.n < 8 or self.n % 2:
            raise EngineError(f"grid size must be an even number ≥ 8, got {self.n}")
        if not (self.length > 0 and self.rd > 0 and self.delta > 0):
            raise EngineError("domain length, deformation radius rd and layer ratio δ must be positive")
        ky, kx = rfft_wavenumbers(self.n, self.device, self.dtype)
        self.dealias = two_thirds_dealias(ky, kx, self.n)
        step = 2 * math.pi / self.length
        self.kx, self.ky = kx * step, ky * step
        self.k2 = self.kx**2 + self.ky**2
        self.f1 = 1 / (self.rd**2 * (1 + self.delta))
        self.f2 = self.delta * self.f1
        self.weights = torch.tensor([self.delta, 1.0], device=self.device, dtype=self.dtype) / (1 + self.delta)
        self.flows = torch.tensor([self.upper_flow, self.lower_flow], device=self.device, dtype=self.dtype)
        shear = self.upper_flow - self.lower_flow
        self.pv_gradients = torch.tensor([self.beta + self.f1 * shear, self.beta - self.f2 * shear],
                                         device=self.device, dtype=self.dtype)
        det = self.k2 * (self.k2 + self.f1 + self.f2)
        inverse = torch.where(det > 0, 1 / torch.where(det > 0, det, 1.0), 0.0)  # the mean mode carries no ψ
        f1, f2 = torch.full_like(self.k2, -self.f1), torch.full_like(self.k2, -self.f2)
        self.inversion = torch.stack([torch.stack([-(self.k2 + self.f2), f1]),
                                      torch.stack([f2, -(self.k2 + self.f1)])]) * inverse
        grid = self.length / self.n
        kappa = torch.sqrt((self.kx * grid) ** 2 + (self.ky * grid) ** 2)
        self.filter = torch.where(kappa > FILTER_CUTOFF, torch.exp(-FILTER_FACTOR * (kappa - FILTER_CUTOFF) ** 4), 1.0)

    def streamfunction(self, q_hat: Tensor) -> Tensor:
        """ψ̂ from q̂ per mode: (..., 2, n, n/2 + 1) → the same (the 2×2 inversion)."""
        return torch.einsum("ijyx,...jyx->...iyx", self.inversion.to(q_hat.dtype), q_hat)

    def _physical(self, field_hat: Tensor) -> Tensor:
        return torch.fft.irfft2(field_hat * self.dealias, s=(self.n, self.n))

    def jacobian(self, psi_hat: Tensor, q_hat: Tensor) -> Tensor:
        """``J(ψ, q)`` per layer in Fourier space, from 2/3-dealiased fields (4 inverse FFTs, 1 forward)."""
        ikx, iky = 1j * self.kx, 1j * self.ky
        psi_x, psi_y, q_x, q_y = self._physical(torch.stack([ikx * psi_hat, iky * psi_hat, ikx * q_hat,
                                                             iky * q_hat]))
        return torch.fft.rfft2(psi_x * q_y - psi_y * q_x) * self.dealias

    def tendency(self, q_hat: Tensor) -> Tensor:
        """``∂q̂/∂t``: advection, the background flows and PV gradients, and bottom drag on the lower layer."""
        psi_hat = self.streamfunction(q_hat)
        flows = self.flows.view(2, 1, 1).to(q_hat.dtype)
        gradients = self.pv_gradients.view(2, 1, 1).to(q_hat.dtype)
        out = -self.jacobian(psi_hat, q_hat) - 1j * self.kx * (flows * q_hat + gradients * psi_hat)
        out[..., 1, :, :] += self.rek * self.k2 * psi_hat[..., 1, :, :]
        return out

    def step(self, q_hat: Tensor, dt: float) -> Tensor:
        """One classical RK4 step, then the exponential filter (when ``filtered``)."""
        k1 = self.tendency(q_hat)
        k2 = self.tendency(q_hat + 0.5 * dt * k1)
        k3 = self.tendency(q_hat + 0.5 * dt * k2)
        k4 = self.tendency(q_hat + dt * k3)
        q_hat = q_hat + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return q_hat * self.filter if self.filtered else q_hat

    def _mean_product(self, a_hat: Tensor, b_hat: Tensor) -> Tensor:
        """Domain mean ⟨a b⟩ of two real fields from their rfft2 halves: (..., n, n/2 + 1) → (...)."""
        weight = torch.full((self.n // 2 + 1,), 2.0, device=a_hat.device, dtype=self.dtype)
        weight[0] = 1.0
        weight[-1] = 1.0  # the Nyquist column appears once in a real field's full spectrum
        return (a_hat * b_hat.conj()).real.mul(weight).sum((-2, -1)) / self.n**4

    def energy(self, q_hat: Tensor) -> Tensor:
        """``E = −½ Σ_i (H_i/H) ⟨ψ_i q_i⟩`` (kinetic plus available potential energy, m²/s²) per trajectory."""
        psi_hat = self.streamfunction(q_hat)
        return -0.5 * (self.weights * self._mean_product(psi_hat, q_hat)).sum(-1)

    def energy_budget(self, q_hat: Tensor) -> dict[str, Tensor]:
        """``dE/dt`` from the tendency (``−Σ_i (H_i/H) ⟨ψ_i ∂q_i/∂t⟩``), and the closed-form generation and drag."""
        psi_hat = self.streamfunction(q_hat)
        rate = -(self.weights * self._mean_product(psi_hat, self.tendency(q_hat))).sum(-1)
        shear = self.upper_flow - self.lower_flow
        generation = self.weights[0] * self.f1 * shear * self._mean_product(psi_hat[..., 0, :, :],
                                                                            1j * self.kx * psi_hat[..., 1, :, :])
        drag = -self.weights[1] * self.rek * self._mean_product(psi_hat[..., 1, :, :] * self.k2, psi_hat[..., 1, :, :])
        return {"rate": rate, "generation": generation, "drag": drag}

    def max_speed(self, q_hat: Tensor) -> Tensor:
        """max |u| over layers, grid and batch, background flows included (0-d tensor, no host sync)."""
        psi_hat = self.streamfunction(q_hat)
        u = torch.fft.irfft2(-1j * self.ky * psi_hat, s=(self.n, self.n)) + self.flows.view(2, 1, 1)
        v = torch.fft.irfft2(1j * self.kx * psi_hat, s=(self.n, self.n))
        return torch.sqrt(u**2 + v**2).amax()


def equation_of(config: QGConfig, device) -> TwoLayerQG:
    """The equations with ``config``'s physical parameters (filter on)."""
    return TwoLayerQG(config.size, config.length, config.beta, config.rek, config.delta, config.rd, config.upper_flow,
                      config.lower_flow, device=device)


def simulate_qg(config: QGConfig, callback: Callable[[dict], None] | None = None,
                state_path: str | Path | None = None, state_every_seconds: float = 20.0,
                select: slice = slice(None)) -> xr.Dataset:
    """Spin up ``config.trajectories`` jets from small random PV (pyqg's start: amplitude ``perturbation``, opposite in
    the two layers), then save ``config.snapshots`` states every ``save_interval`` seconds. Resumable from
    ``state_path`` as ``simulate_kolmogorov``; ``select`` integrates a share of the seeded batch."""
    device = resolve_device(config.device)
    eq, n = equation_of(config, device), config.size
    inner = max(1, math.ceil(config.save_interval / config.dt))
    dt = config.save_interval / inner
    generator = torch.Generator(device=device).manual_seed(config.seed)
    noise = torch.randn(config.trajectories, n, n, generator=generator, device=device, dtype=torch.float64)
    noise = config.perturbation * (noise - noise.mean((-2, -1), keepdim=True))
    q_hat = torch.fft.rfft2(torch.stack([noise, -noise], 1)[select])
    dx = config.length / n

    def advance(state: Tensor, save: int) -> Tensor:  # deterministic: the save index is not needed
        for _ in range(inner):
            state = eq.step(state, dt)
        return state

    def speed(state: Tensor, save: int) -> float:
        fastest = float(eq.max_speed(state))
        if not math.isfinite(fastest) or fastest * dt / dx > config.cfl:
            raise EngineError(f"the jet reached |u| = {fastest:.3g} m/s at t = {save * config.save_interval:.3g} s, "
                              f"a Courant number {fastest * dt / dx:.2f} > cfl {config.cfl}: lower --dt")
        return fastest

    pv = run_with_saves(state=q_hat, advance=advance, speed=speed, config=config, device=device, callback=callback,
                        state_path=state_path, state_every_seconds=state_every_seconds)
    return qg_dataset(pv, config, dt, select)  # (trajectory, time, layer, y, x)


def qg_dataset(pv: Tensor, config: QGConfig, dt: float, select: slice) -> xr.Dataset:
    """Upper- and lower-layer PV (trajectory, time, y, x) with coordinates in metres and seconds, the upper layer's
    spectrum, and provenance."""
    variables = {f"pv_{layer}": (("trajectory", "time", "y", "x"), pv[:, :, i].numpy(),
                                 {"long_name": f"{layer}-layer potential vorticity anomaly q", "units": "1/s"})
                 for i, layer in enumerate(LAYERS)}
    return xr.Dataset(
        {**variables, "spectrum": spectrum_variable(pv[:, :, 0], "pv_upper")},
        coords=saved_coords(config, range(config.trajectories)[select], side=config.length, length={"units": "m"},
                            time_units="s"),
        attrs=provenance("engine.data.qg", **options(config), time_step=dt,
                         scheme="pseudo-spectral, 2/3 dealiasing, RK4, pyqg exponential filter"))
