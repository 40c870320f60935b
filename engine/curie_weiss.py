"""Paper 003's second exact model: Curie–Weiss spins in d dimensions with their exact interpolant drift
(docs/science.md §4).

Below its critical temperature (coupling J > 1) the Curie–Weiss measure on s ∈ {±1}^d concentrates, as d grows, on
two pure states: i.i.d. spins of mean +m or −m, m = tanh(J m). As in paper 003 (and its reference notebooks) the
data here is that two-state measure, with phase weights p and 1 − p: ``x1 = σ·s``, σ = +1 with probability p, each
spin equal to σ with probability (1 + m)/2. The phase is the high-level feature, the individual spins (±1, with
magnetization M/d = ±m) the low-level one.

Along ``x_t = α x0 + β x1`` (x0 ~ N(0, I)) each coordinate's likelihood is ∝ exp(κ x_i s_i) with κ = β/α², so
given the phase the posterior spin mean is tanh(σ atanh m + κ x_i) = (σm + τ_i)/(1 + σ m τ_i), τ_i = tanh(κ x_i),
and the phase's posterior log-odds are ``ℓ = log(p/(1 − p)) + Σ_i 2 atanh(m τ_i)``; mixed by the phase posterior,
η_i = E[x1_i | x_t] = (τ_i(1 − m²) + tanh(ℓ/2) m (1 − τ_i²)) / (1 − m² τ_i²), and

    b(t, x) = (αα'/α²)(x − β η) + β' η,

exact for this measure at every d. Euler on it costs O(count·d) per step (no reduced form as for the mixture:
the phase is decided by the √d-sized fluctuation of a sum over all coordinates).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from engine.devices import check_memory
from engine.errors import EngineError
from engine.mixture import MIXTURE_SCHEDULES, fewest_steps, mixture_schedule

Tensor = torch.Tensor
BYTES_PER_SPIN = 32  # the float32 state and the drift's ~7 temporaries of its size
PHASE_TOLERANCE, MAGNETIZATION_TOLERANCE, SPIN_TOLERANCE = 0.05, 0.02, 0.05  # |p̂ − p|, ||M̂|/d − m|, |⟨x²⟩ − 1|


def spontaneous_magnetization(coupling: float) -> float:
    """The positive root of m = tanh(J m) (J > 1), by bisection on [0, 1]."""
    low, high = 1e-12, 1.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if math.tanh(coupling * middle) > middle else (low, middle)
    return 0.5 * (low + high)


@dataclass(frozen=True)
class CurieWeiss:
    """Curie–Weiss spins below the critical temperature: phase + with weight p, coupling J, dimension d."""

    d: int
    p: float = 0.8
    coupling: float = 2.0

    def __post_init__(self):
        if self.d < 1 or not 0 < self.p < 1 or not 1 < self.coupling <= 50:
            raise EngineError(f"Curie–Weiss needs d ≥ 1, 0 < p < 1 and a coupling 1 < J ≤ 50 (two phases); got "
                              f"d = {self.d}, p = {self.p}, J = {self.coupling}")

    @functools.cached_property
    def magnetization(self) -> float:
        """m = tanh(J m), solved once per model (the drift reads it at every Euler step)."""
        return spontaneous_magnetization(self.coupling)

    def sample(self, count: int, generator: torch.Generator | None = None) -> Tensor:
        """``count`` spin configurations (count, d) of ±1."""
        phase = torch.where(torch.rand(count, 1, generator=generator, dtype=torch.float64) < self.p, 1.0, -1.0)
        aligned = torch.rand(count, self.d, generator=generator, dtype=torch.float64) < (1 + self.magnetization) / 2
        return torch.where(aligned, phase, -phase)

    def posterior_mean(self, x: Tensor, kappa: Tensor) -> Tensor:
        """η = E[x1 | x_t = x] for x: (count, d), with κ = β/α² (see the module doc)."""
        m = self.magnetization
        spins = torch.tanh(kappa * x)
        log_odds = math.log(self.p / (1 - self.p)) + 2 * torch.atanh(m * spins).sum(-1, keepdim=True)
        phase = torch.tanh(0.5 * log_odds)  # P(+) − P(−)
        return (spins * (1 - m**2) + phase * m * (1 - spins**2)) / (1 - (m * spins) ** 2)  # both phases' means, mixed

    def drift(self, schedule):
        """``b(t, x)`` along the schedule (t < 1, where α > 0)."""
        def b(t, x: Tensor) -> Tensor:
            c = schedule(torch.as_tensor(t, dtype=torch.float64))
            eta = self.posterior_mean(x, c.beta / c.alpha**2)
            return c.alpha_dalpha / c.alpha**2 * (x - c.beta * eta) + c.dbeta * eta

        return b


class SpinRun(NamedTuple):
    """Generated configurations (count, d) and each one's magnetization M/d at every grid time (steps + 1, count)."""

    x: Tensor
    magnetization: Tensor


def generate_spins(model: CurieWeiss, kind: str, steps: int, count: int = 200, seed: int = 0,
                   dilation_k: float = 3.0) -> SpinRun:
    """Euler on the exact drift over ``steps`` uniform steps in t along paper 003's ``kind`` path
    (``engine.mixture.mixture_schedule``), from its t = 0 marginal α(0) x0 (β(0) = 0: pure noise)."""
    if steps < 1 or count < 1:
        raise EngineError(f"Curie–Weiss generation needs steps ≥ 1 and count ≥ 1, not {steps} and {count}")
    check_memory(required=BYTES_PER_SPIN * count * model.d, what=f"{count} samples of {model.d} spins",
                 fix="ask for fewer samples or a smaller d")
    schedule = mixture_schedule(kind, model.d, dilation_k)
    drift = model.drift(schedule)
    generator = torch.Generator().manual_seed(seed)
    x = schedule(0.0).alpha * torch.randn(count, model.d, generator=generator)  # float32: 2.5× faster, ample
    ts = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    path = [x.mean(-1)]
    for t, t_next in zip(ts[:-1], ts[1:]):
        x = x + (t_next - t) * drift(t, x)
        path.append(x.mean(-1))
    return SpinRun(x, torch.stack(path))


class SpinStatistics(NamedTuple):
    """p̂: share of the ``count`` samples with M > 0; magnetization: mean |M|/d; spin_square: ⟨x_i²⟩ (1 for ±1
    spins)."""

    p_hat: float
    magnetization: float
    spin_square: float
    count: int


def spin_statistics(x: Tensor) -> SpinStatistics:
    magnetization = x.mean(-1)
    return SpinStatistics(float((magnetization > 0).double().mean()), float(magnetization.abs().mean()),
                          float((x**2).mean()), x.shape[0])


def phase_tolerance(p: float, count: int) -> float:
    """``PHASE_TOLERANCE``, or three standard errors √(p(1 − p)/count) of p̂ where the sample is too small to
    resolve it (0.085 at 200 samples): a converged sampler is not failed by its sampling error."""
    return max(PHASE_TOLERANCE, 3 * math.sqrt(p * (1 - p) / count))


def recovered_features(model: CurieWeiss, stats: SpinStatistics) -> tuple[bool, bool]:
    """(phase weight within ``phase_tolerance`` of p, spins: |M|/d within ``MAGNETIZATION_TOLERANCE`` of m and
    ⟨x²⟩ within ``SPIN_TOLERANCE`` of 1)."""
    spins = (abs(stats.magnetization - model.magnetization) <= MAGNETIZATION_TOLERANCE
             and abs(stats.spin_square - 1) <= SPIN_TOLERANCE)
    return abs(stats.p_hat - model.p) <= phase_tolerance(model.p, stats.count), spins


def steps_to_recover_spins(model: CurieWeiss, kind: str, *, count: int = 200, seeds: int = 1,
                           dilation_k: float = 3.0, max_steps: int = 4096) -> int | None:
    """The fewest Euler steps whose samples recover both the phase weight and the spins for every seed."""
    def both(steps: int) -> bool:
        return all(all(recovered_features(model, spin_statistics(generate_spins(model, kind, steps, count, seed,
                                                                                dilation_k).x)))
                   for seed in range(seeds))

    return fewest_steps(both, max_steps)


def spin_dimension_sweep(*, p: float = 0.8, coupling: float = 2.0, dimensions: tuple[int, ...] = (100, 1000, 10_000),
                         count: int = 200, dilation_k: float = 3.0) -> dict[str, list[int | None]]:
    """``steps_to_recover_spins`` for every schedule at every d: paper 003's complexity claim on Curie–Weiss."""
    return {kind: [steps_to_recover_spins(CurieWeiss(d, p, coupling), kind, count=count, dilation_k=dilation_k)
                   for d in dimensions] for kind in MIXTURE_SCHEDULES}
