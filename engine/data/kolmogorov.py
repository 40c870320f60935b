"""2-D Kolmogorov flow: incompressible Navier–Stokes in vorticity form on the periodic square [0, 2π)².

    ∂ω/∂t + u·∇ω = ν∇²ω − μ ω + f,   f = −n cos(n y)  (the curl of the x-forcing sin(n y)),

with velocity ``u = (∂ψ/∂y, −∂ψ/∂x)``, ``−∇²ψ = ω``. Pseudo-spectral on the rfft2 grid with 2/3 dealiasing;
the stiff linear part ``(−ν|k|² − μ) ω̂`` is treated implicitly (Crank–Nicolson) and advection and forcing
explicitly by the low-storage IMEX RK4 of Carpenter & Kennedy, in the style of jax-cfd's
``crank_nicolson_rk4`` (``scheme="cn_rk4"``, the default), or exactly by the exponential RK4 of Cox & Matthews
(``scheme="etdrk4"``); ``scheme="dopri5"`` steps the whole right-hand side by the explicit Dormand–Prince RK5 (the
viscous part is not stiff at the CFL step of these flows: ν|k|²dt ≪ 1). Batched over trajectories, in torch, on
CUDA when the state is there.

Reference: docs/science.md §3 and §5 (PDD setup: ν = 10⁻³, drag 0.1, forcing −4 cos 4y); jax-cfd
``jax_cfd/spectral/equations.py`` and ``time_stepping.py``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import torch
import xarray as xr

from engine.config import KolmogorovConfig, options
from engine.data.runs import run_with_saves, saved_coords
from engine.data.store import provenance, spectrum_variable
from engine.devices import resolve_device
from engine.errors import EngineError
from engine.noise import colour
from engine.process import keep_freed_memory
from engine.spectral import rfft_wavenumbers, two_thirds_dealias, wavenumber_magnitude

Tensor = torch.Tensor

# Carpenter & Kennedy (1994) 2N-storage RK4 nodes α, weights β, γ (the IMEX form used by jax-cfd)
CN_RK4_ALPHA = (0.0, 0.1496590219993, 0.3704009573644, 0.6222557631345, 0.9582821306748, 1.0)
CN_RK4_BETA = (0.0, -0.4178904745, -1.192151694643, -1.697784692471, -1.514183444257)
CN_RK4_GAMMA = (0.1496590219993, 0.3792103129999, 0.8229550293869, 0.6994504559488, 0.1530572479681)


@dataclass
class KolmogorovFlow:
    """The equation on an n×n grid, in Fourier space (rfft2 of ω, ``norm="backward"``)."""

    n: int
    viscosity: float = 1e-3
    drag: float = 0.1
    forcing_wavenumber: int = 4
    device: torch.device | str = "cpu"
    dtype: torch.dtype = torch.float64

    def __post_init__(self):
        if self.n < 8 or self.n % 2:
            raise EngineError(f"grid size must be an even number ≥ 8, got {self.n}")
        if not self.viscosity > 0:
            raise EngineError(f"viscosity ν must be positive, got {self.viscosity}")
        if self.drag < 0:
            raise EngineError(f"drag must be ≥ 0, got {self.drag}")
        ky, kx = rfft_wavenumbers(self.n, self.device, self.dtype)
        k2 = kx**2 + ky**2
        self.ikx, self.iky = 1j * kx, 1j * ky
        self.inverse_laplacian = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, 1.0), 0.0)  # ψ̂ = ω̂ / |k|²
        self.linear = -self.viscosity * k2 - self.drag
        self.dealias = two_thirds_dealias(ky, kx, self.n)
        y = torch.arange(self.n, device=self.device, dtype=self.dtype) * (2 * math.pi / self.n)
        forcing = -self.forcing_wavenumber * torch.cos(self.forcing_wavenumber * y)[:, None].expand(self.n, self.n)
        self.forcing_hat = torch.fft.rfft2(forcing)
        # one batched inverse FFT gives (u, v) from dealiased ω̂: u = ∂ψ/∂y, v = −∂ψ/∂x, ψ̂ = ω̂/|k|²
        self.velocity_multipliers = torch.stack([self.iky * self.inverse_laplacian,
                                                 -self.ikx * self.inverse_laplacian]) * self.dealias
        # −u·∇ω = (k_x² − k_y²) (uv)^ + k_x k_y (v² − u²)^ in Fourier space (Basdevant's form), dealiased; stored
        # complex, as the spectra they multiply, so no step casts them
        self.advection_multipliers = (torch.stack([kx**2 - ky**2, kx * ky]) * self.dealias).to(self.forcing_hat.dtype)
        self._buffers, self._solvers = {}, {}

    def velocity(self, omega_hat: Tensor) -> tuple[Tensor, Tensor]:
        """``u = ∂ψ/∂y``, ``v = −∂ψ/∂x`` in physical space."""
        psi_hat = omega_hat * self.inverse_laplacian
        s = (self.n, self.n)
        return torch.fft.irfft2(self.iky * psi_hat, s=s), torch.fft.irfft2(-self.ikx * psi_hat, s=s)

    def _workspace(self, omega_hat: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Buffers reused across calls for this batch shape: large temporaries cost page faults on every call."""
        key = (omega_hat.shape, omega_hat.device)
        if self._buffers.get("key") != key:
            spectral = torch.empty((2, *omega_hat.shape), dtype=omega_hat.dtype, device=omega_hat.device)
            shape = (2, *omega_hat.shape[:-2], self.n, self.n)
            physical = torch.empty(shape, dtype=self.dtype, device=omega_hat.device)
            self._buffers = {"key": key, "buffers": (spectral, physical, torch.empty_like(physical))}
        return self._buffers["buffers"]

    def explicit_terms(self, omega_hat: Tensor) -> Tensor:
        """``−u·∇ω + f`` with ``u·∇ω = (∂x² − ∂y²)(uv) + ∂x∂y(v² − u²)`` (Basdevant 1983; the same as ``u ∂ω/∂x
        + v ∂ω/∂y`` for a divergence-free u), products of 2/3-dealiased fields: 2 inverse FFTs in one call and 2
        forward in one, against 4 + 1 for the products of the velocity with the vorticity's gradient."""
        spectral, physical, products = self._workspace(omega_hat)
        multipliers = self.velocity_multipliers.view(2, *([1] * (omega_hat.dim() - 2)), *omega_hat.shape[-2:])
        torch.mul(omega_hat.unsqueeze(0), multipliers, out=spectral)
        torch.fft.irfft2(spectral, s=(self.n, self.n), out=physical)
        u, v = physical
        torch.mul(u, v, out=products[0])
        torch.mul(v, v, out=products[1]).addcmul_(u, u, value=-1)
        uv_hat, squares_hat = torch.fft.rfft2(products)
        return torch.addcmul(self.forcing_hat, uv_hat, self.advection_multipliers[0]).addcmul_(
            squares_hat, self.advection_multipliers[1])

    def implicit_terms(self, omega_hat: Tensor) -> Tensor:
        """``(−ν|k|² − μ) ω̂``."""
        return self.linear * omega_hat

    def implicit_solve(self, omega_hat: Tensor, step: float) -> Tensor:
        """Solve ``(1 − step·L) x = ω̂`` for the diagonal linear operator L (the inverse cached per step size)."""
        if step not in self._solvers:
            self._solvers[step] = 1 / (1 - step * self.linear)
        return omega_hat * self._solvers[step]


def _cast_once(multipliers: tuple[Tensor, ...]) -> Callable[[torch.dtype], tuple[Tensor, ...]]:
    """The ``multipliers`` in a state's (complex) dtype, cast on first use per dtype: a real multiplier times a
    complex spectrum would be cast again on every call."""
    cast: dict[torch.dtype, tuple[Tensor, ...]] = {}

    def of(dtype: torch.dtype) -> tuple[Tensor, ...]:
        if dtype not in cast:
            cast[dtype] = tuple(m.to(dtype) for m in multipliers)
        return cast[dtype]

    return of


def crank_nicolson_rk4(explicit: Callable[[Tensor], Tensor], implicit: Callable[[Tensor], Tensor],
                       implicit_solve: Callable[[Tensor, float], Tensor], dt: float,
                       diagonal: Tensor | None = None) -> Callable[[Tensor], Tensor]:
    """IMEX low-storage RK4: explicit terms by Carpenter–Kennedy RK4, implicit ones by Crank–Nicolson per stage.

    Stage k: ``h ← N(u) + β_k h``, ``u ← (1 − μ_k L)⁻¹ (u + γ_k dt h + μ_k L u)``, μ_k = ½ dt (α_{k+1} − α_k).
    When the implicit operator is a ``diagonal`` L (Fourier space), the update is fused into
    ``u ← P_k u + Q_k h`` with P_k = (1 + μ_k L)/(1 − μ_k L), Q_k = γ_k dt/(1 − μ_k L): fewer tensor ops per step.
    """
    alpha, beta, gamma = CN_RK4_ALPHA, CN_RK4_BETA, CN_RK4_GAMMA
    mus = [0.5 * dt * (alpha[k + 1] - alpha[k]) for k in range(len(beta))]
    if diagonal is not None:
        fused = _cast_once(tuple(m for k, mu in enumerate(mus) for m in ((1 + mu * diagonal) / (1 - mu * diagonal),
                                                                      gamma[k] * dt / (1 - mu * diagonal))))

    def step(u: Tensor) -> Tensor:
        h = explicit(u)
        for k in range(len(beta)):
            if k:
                h = explicit(u).add_(h, alpha=beta[k])
            if diagonal is not None:
                p_k, q_k = fused(u.dtype)[2 * k:2 * k + 2]
                u = torch.mul(u, p_k).addcmul_(h, q_k)
            else:
                u = implicit_solve(torch.add(u, h, alpha=gamma[k] * dt).add_(implicit(u), alpha=mus[k]), mus[k])
        return u

    return step


CONTOUR_POINTS = 32  # points on the circle of Kassam–Trefethen's contour integrals (their M)


def etdrk4_coefficients(linear: Tensor, dt: float, points: int = CONTOUR_POINTS) -> tuple[Tensor, ...]:
    """ETDRK4's multipliers for the diagonal linear operator L: ``E = e^{L dt}``, ``E₂ = e^{L dt/2}`` and the
    φ-function combinations ``Q = dt φ₁(z/2)/2``, ``f₁``, ``f₂``, ``f₃`` (Cox–Matthews), each the mean over
    ``points`` points r on the unit circle of its formula at z + r (z = L dt; Kassam–Trefethen), so no digits are
    lost where |z| is small. Computed once per distinct value of L (it depends on |k|² only), in float64."""
    values, index = torch.unique(linear.to(torch.float64), return_inverse=True)
    r = torch.exp(1j * math.pi * (torch.arange(1, points + 1, dtype=torch.float64, device=values.device) - 0.5)
                  / points)
    z = (dt * values)[:, None] + r[None, :]
    ez, ez2 = torch.exp(z), torch.exp(z / 2)
    formulas = (dt * (ez2 - 1) / z,
                dt * (-4 - z + ez * (4 - 3 * z + z**2)) / z**3,
                dt * (2 + z + ez * (z - 2)) / z**3,
                dt * (-4 - 3 * z - z**2 + ez * (4 - z)) / z**3)
    combinations = [formula.mean(-1).real[index] for formula in formulas]
    return (torch.exp(dt * linear.to(torch.float64)), torch.exp(0.5 * dt * linear.to(torch.float64)), *combinations)


def etdrk4(explicit: Callable[[Tensor], Tensor], linear: Tensor, dt: float) -> Callable[[Tensor], Tensor]:
    """Cox–Matthews ETDRK4 for ``u' = L u + N(u)`` with a diagonal L (exact for the linear part, so the stiff
    viscous modes set no step limit), four evaluations of N per step against the IMEX RK4's five:

        a = E₂u + Q N(u),  b = E₂u + Q N(a),  c = E₂a + Q (2N(b) − N(u)),
        u ← E u + f₁ N(u) + 2 f₂ (N(a) + N(b)) + f₃ N(c)   (``etdrk4_coefficients``)."""
    coefficients = etdrk4_coefficients(linear, dt)
    cast = _cast_once(coefficients)

    def step(u: Tensor) -> Tensor:
        e_, e2_, q_, f1_, f2_, f3_ = cast(u.dtype)
        nu = explicit(u)
        e2u = e2_ * u
        a = torch.addcmul(e2u, q_, nu)
        na = explicit(a)
        nb = explicit(torch.addcmul(e2u, q_, na))
        c = torch.mul(e2_, a).addcmul_(q_, nb, value=2).addcmul_(q_, nu, value=-1)
        return torch.mul(e_, u).addcmul_(f1_, nu).addcmul_(f2_, na.add_(nb), value=2).addcmul_(f3_, explicit(c))

    return step


# Dormand & Prince (1980) RK5(4): the stages' a_ij and the fifth-order weights b_j (b₂ = 0; its seventh stage serves
# only the embedded error estimate, which a fixed step does not use)
DOPRI5_A = ((), (1 / 5,), (3 / 40, 9 / 40), (44 / 45, -56 / 15, 32 / 9),
            (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
            (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656))
DOPRI5_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)
DOPRI5_DIFFUSIVE_BOUND = 3.3  # its stability interval on the negative real axis: |L| dt ≤ 3.3


def dormand_prince5(rhs: Callable[[Tensor], Tensor], dt: float) -> Callable[[Tensor], Tensor]:
    """Fixed-step explicit Dormand–Prince RK5 for ``u' = F(u)``: six evaluations of F a step,

        k_i = F(u + dt Σ_{j<i} a_ij k_j),  u ← u + dt Σ_j b_j k_j   (``DOPRI5_A``, ``DOPRI5_B``)."""

    def step(u: Tensor) -> Tensor:
        stages: list[Tensor] = []
        for row in DOPRI5_A:
            x = u
            for j, a in enumerate(row):
                x = torch.add(x, stages[j], alpha=dt * a) if j == 0 else x.add_(stages[j], alpha=dt * a)
            stages.append(rhs(x))
        out = torch.add(u, stages[0], alpha=dt * DOPRI5_B[0])
        for k, b in zip(stages[2:], DOPRI5_B[2:]):
            out.add_(k, alpha=dt * b)
        return out

    return step


def full_right_hand_side(equation: KolmogorovFlow, dt: float) -> Callable[[Tensor], Tensor]:
    """``F(ω̂) = L ω̂ + N(ω̂)`` for a fully explicit scheme, refused where the viscous modes would set the step:
    ``max |L| dt`` beyond Dormand–Prince's stability interval."""
    stiffness = float(equation.linear.abs().max()) * dt
    if stiffness > DOPRI5_DIFFUSIVE_BOUND:
        raise EngineError(f"dopri5 treats viscosity and drag explicitly and max|L| dt = {stiffness:.3g} exceeds its "
                          f"stability bound {DOPRI5_DIFFUSIVE_BOUND}: use cn_rk4 or etdrk4, or a smaller dt")
    linear = _cast_once((equation.linear,))
    return lambda u: equation.explicit_terms(u).addcmul_(linear(u.dtype)[0], u)


class Scheme(NamedTuple):
    """A time stepper's name in the data's provenance and its evaluations of the nonlinear term N a step."""

    method: str
    evaluations: int


SCHEMES = {"cn_rk4": Scheme("IMEX Crank-Nicolson RK4", 5),
           "etdrk4": Scheme("ETDRK4 (Cox-Matthews, Kassam-Trefethen coefficients)", 4),
           "dopri5": Scheme("explicit Dormand-Prince RK5", 6)}


def time_stepper(equation: KolmogorovFlow, scheme: str, dt: float) -> Callable[[Tensor], Tensor]:
    """One step of ``dt`` by ``scheme``: ``cn_rk4`` (IMEX RK4, the diagonal stage fused), ``etdrk4`` or ``dopri5``."""
    if scheme not in SCHEMES:
        raise EngineError(f"scheme must be one of {', '.join(SCHEMES)}, not {scheme!r}")
    if scheme == "etdrk4":
        return etdrk4(equation.explicit_terms, equation.linear, dt)
    if scheme == "dopri5":
        return dormand_prince5(full_right_hand_side(equation, dt), dt)
    return crank_nicolson_rk4(equation.explicit_terms, equation.implicit_terms, equation.implicit_solve, dt,
                              equation.linear)


def max_velocity(equation: KolmogorovFlow, omega_hat: Tensor) -> Tensor:
    """``max |u|`` over the grid and the batch (a 0-d tensor; no host sync until read)."""
    u, v = equation.velocity(omega_hat)
    return torch.sqrt(u**2 + v**2).amax()


def stable_time_step(max_speed: float, n: int, cfl: float = 0.5) -> float:
    """Advective CFL bound ``dt = C · dx / max|u|`` with dx = 2π/n (diffusion is implicit, so unbounded)."""
    return cfl * (2 * math.pi / n) / max(max_speed, 1e-12)


def random_vorticity(n: int, batch: int, generator: torch.Generator, peak: int = 4, rms: float = 2.0,
                     device=None) -> Tensor:
    """Smooth random initial vorticity: Gaussian with modal variance ∝ k⁴ exp(−(k/k_peak)²), scaled to ``rms``."""
    k = wavenumber_magnitude(n, device, torch.float64)
    power = k**4 * torch.exp(-((k / peak) ** 2))
    power[0, 0] = 0.0
    white = torch.randn(batch, n, n, generator=generator, device=device, dtype=torch.float64)
    omega = colour(white, power / power.sum())
    return omega * rms


def simulate_kolmogorov(config: KolmogorovConfig, callback: Callable[[dict], None] | None = None,
                        state_path: str | Path | None = None, state_every_seconds: float = 20.0,
                        select: slice = slice(None)) -> xr.Dataset:
    """Spin up ``config.trajectories`` flows, then save ``config.snapshots`` states every ``save_interval``.

    With ``state_path``, the run keeps its state there (every ``state_every_seconds`` and when interrupted by
    any exception, Ctrl-C included) and a later call with the same parameters resumes from it bit-exactly.
    ``select`` integrates only those trajectories of the seeded batch (a cluster task's share; no state kept).
    """
    device = resolve_device(config.device)
    keep_freed_memory()
    n = config.size
    if config.forcing_wavenumber > n // 3:
        raise EngineError(f"forcing wavenumber {config.forcing_wavenumber} is not resolved on {n}² after 2/3 "
                          "dealiasing")
    eq = KolmogorovFlow(n, config.viscosity, config.drag, config.forcing_wavenumber, device)
    dt_bound = stable_time_step(config.max_velocity, n, config.cfl)
    inner = max(1, math.ceil(config.save_interval / dt_bound))
    dt = config.save_interval / inner
    step = time_stepper(eq, config.scheme, dt)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    omega_hat = torch.fft.rfft2(random_vorticity(n, config.trajectories, generator, device=device)[select])
    def advance(state: Tensor, save: int) -> Tensor:  # deterministic: the save index is not needed
        for _ in range(inner):
            state = step(state)
        return state

    def speed(state: Tensor, save: int) -> float:
        fastest = float(max_velocity(eq, state))
        if not math.isfinite(fastest) or fastest > config.max_velocity:
            raise EngineError(f"the flow reached |u| = {fastest:.3g} > max_velocity {config.max_velocity} at "
                              f"t = {save * config.save_interval:.3g}: raise max_velocity (smaller dt)")
        return fastest

    vorticity = run_with_saves(state=omega_hat, advance=advance, speed=speed, config=config, device=device,
                               callback=callback, state_path=state_path, state_every_seconds=state_every_seconds)
    return xr.Dataset(
        {"vorticity": (("trajectory", "time", "y", "x"), vorticity.numpy(),
                       {"long_name": "vorticity ω", "units": "1/time"}),
         "spectrum": spectrum_variable(vorticity, "vorticity")},
        coords=saved_coords(config, range(config.trajectories)[select]),
        attrs=provenance("engine.data.kolmogorov", **options(config), dt=dt,
                         forcing="sin(n y) in the x-velocity; vorticity forcing -n cos(n y)",
                         method=f"pseudo-spectral, 2/3 dealiasing, {SCHEMES[config.scheme].method}"))
