"""A two-mode Gaussian mixture in d dimensions with its exact interpolant drift (paper 003, docs/science.md §4).

Data ``x1 ~ p N(μ, σ²I) + (1 − p) N(−μ, σ²I)`` with μ = (1, …, 1), noise ``x0 ~ N(0, I)``, path
``x_t = α x0 + β x1``. Given the mode, x_t is Gaussian with mean ±βμ and variance ``v = α² + β²σ²``, so with
``m = 2 P(+ | x) − 1 = tanh(½ log(p/(1 − p)) + β x·μ / v)``:

    b(t, x) = (αα' + ββ'σ²)/v · (x − β m μ) + β' m μ.

Paper 003's paths: VP ``x_τ = sqrt(1 − τ²) x0 + τ x1`` and VE ``x_τ = √d (1 − τ) x0 + τ x1`` (noise N(0, d I)),
each on a uniform grid (τ = t) or time-dilated (``engine.schedules.vp_dilation``/``ve_dilation``). For VP the mode
weights are decided where β ~ k/√d: a uniform grid needs O(√d) steps to resolve that window (it recovers σ² but
not p); for VE the within-mode variance is decided where the noise α ~ σ, i.e. 1 − τ ~ 1/√d (it recovers p but
not σ²). A dilated grid spends half its steps in that window and needs a number of steps that does not grow
with d for both (``tests/engine/test_mixture.py`` checks it at d = 10³ and 10⁴).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from engine.errors import EngineError
from engine.schedules import Dilated, VarianceExploding, VarPreservingSqrt, ve_dilation, vp_dilation

Tensor = torch.Tensor
MIXTURE_SCHEDULES = ("vp", "vp_dilated", "ve", "ve_dilated")
P_TOLERANCE, SIGMA2_TOLERANCE = 0.04, 0.15  # |p̂ − p| and |σ̂²/σ² − 1| within which a feature counts as recovered


def mixture_schedule(kind: str, d: int, dilation_k: float = 3.0):
    """Paper 003's VP or VE path in d dimensions, on a uniform or a time-dilated grid (see the module doc)."""
    if kind not in MIXTURE_SCHEDULES:
        raise EngineError(f"mixture schedules are {', '.join(MIXTURE_SCHEDULES)}, not {kind!r}")
    if kind == "vp":
        return VarPreservingSqrt()
    if kind == "vp_dilated":
        return Dilated(VarPreservingSqrt(), vp_dilation(dilation_k, d), kind)
    if kind == "ve":
        return VarianceExploding(math.sqrt(d))
    return Dilated(VarianceExploding(math.sqrt(d)), ve_dilation(dilation_k, math.sqrt(d)), kind)


@dataclass(frozen=True)
class TwoModeMixture:
    """Weight p on the mode at +μ, 1 − p at −μ, within-mode variance σ², dimension d."""

    d: int
    p: float = 0.8
    sigma2: float = 0.5

    def __post_init__(self):
        if self.d < 1 or not 0 < self.p < 1 or not self.sigma2 > 0:
            raise EngineError(f"the mixture needs d ≥ 1, 0 < p < 1 and σ² > 0; got d = {self.d}, p = {self.p}, "
                              f"σ² = {self.sigma2}")

    def sample(self, count: int, generator: torch.Generator | None = None) -> Tensor:
        signs = torch.where(torch.rand(count, 1, generator=generator, dtype=torch.float64) < self.p, 1.0, -1.0)
        return signs + math.sqrt(self.sigma2) * torch.randn(count, self.d, generator=generator, dtype=torch.float64)

    def drift(self, schedule):
        """``b(t, x)`` for x: (count, d) along the schedule (exact; see the module doc)."""
        prior = 0.5 * math.log(self.p / (1 - self.p))

        def b(t, x: Tensor) -> Tensor:
            c = schedule(torch.as_tensor(t, dtype=torch.float64))
            v = c.alpha**2 + c.beta**2 * self.sigma2
            m = torch.tanh(prior + c.beta * x.sum(-1, keepdim=True) / v)  # x·μ with μ = ones
            return (c.alpha_dalpha + c.beta_dbeta * self.sigma2) / v * (x - c.beta * m) + c.dbeta * m

        return b


@dataclass
class MixtureSamples:
    """Samples x ∈ R^d stored exactly by the two numbers the dynamics and the statistics need: ``along`` =
    x·μ̂ (μ̂ = μ/√d) and ``across`` = |x − (x·μ̂)μ̂|². The drift acts on x⊥ as a scalar gain, so Euler on them is
    Euler on x itself, at O(count) cost per step instead of O(count·d)."""

    along: Tensor
    across: Tensor
    d: int


def reduced_euler(mixture: TwoModeMixture, schedule, samples: MixtureSamples, ts: Tensor) -> MixtureSamples:
    """Euler on the exact drift over the grid ``ts``: with g = (αα' + ββ'σ²)/v and m = tanh(½ log(p/(1 − p)) +
    β√d a/v), ``a ← a + h[g(a − β m √d) + β' m √d]`` and ``|x⊥|² ← |x⊥|² (1 + h g)²``."""
    prior, root = 0.5 * math.log(mixture.p / (1 - mixture.p)), math.sqrt(mixture.d)
    along, across = samples.along.clone(), samples.across.clone()
    for t, t_next in zip(ts[:-1], ts[1:]):
        c, h = schedule(t), t_next - t
        v = c.alpha**2 + c.beta**2 * mixture.sigma2
        gain = (c.alpha_dalpha + c.beta_dbeta * mixture.sigma2) / v
        m = torch.tanh(prior + c.beta * root * along / v)
        along = along + h * (gain * (along - c.beta * m * root) + c.dbeta * m * root)
        across = across * (1 + h * gain) ** 2
    return MixtureSamples(along, across, mixture.d)


def initial_samples(mixture: TwoModeMixture, alpha: float, beta: float, count: int, seed: int) -> MixtureSamples:
    """``α x0 + β x1`` with x0 ~ N(0, I), x1 from the mixture, drawn exactly in reduced form: along = α N(0, 1) +
    β(±√d + σ N(0, 1)), across = (α² + β²σ²) χ²_{d−1}."""
    generator = torch.Generator().manual_seed(seed)
    normal = torch.randn(2, count, generator=generator, dtype=torch.float64)
    signs = torch.where(torch.rand(count, generator=generator, dtype=torch.float64) < mixture.p, 1.0, -1.0)
    along = alpha * normal[0] + beta * (signs * math.sqrt(mixture.d) + math.sqrt(mixture.sigma2) * normal[1])
    with torch.random.fork_rng(devices=[]):  # χ² has no generator argument: seed a private copy of the global RNG
        torch.manual_seed(seed)
        chi2 = torch.distributions.Chi2(torch.tensor(float(max(mixture.d - 1, 1)), dtype=torch.float64))
        across = (alpha**2 + beta**2 * mixture.sigma2) * chi2.sample((count,)) * (mixture.d > 1)
    return MixtureSamples(along, across, mixture.d)


def from_full(x: Tensor) -> MixtureSamples:
    """The reduced form of explicit samples x: (count, d)."""
    along = x.sum(-1) / math.sqrt(x.shape[-1])
    return MixtureSamples(along, (x**2).sum(-1) - along**2, x.shape[-1])


def mode_statistics(samples: MixtureSamples) -> tuple[float, float]:
    """``(p̂, σ̂²)``: the fraction of samples on the + side (x·μ > 0) and the mean squared distance per coordinate
    to the nearer mode ±μ, ``((a ∓ √d)² + |x⊥|²)/d``."""
    signs = torch.where(samples.along > 0, 1.0, -1.0)
    distance = (samples.along - signs * math.sqrt(samples.d)) ** 2 + samples.across
    return float((signs > 0).double().mean()), float((distance / samples.d).mean())


def recovered(mixture: TwoModeMixture, p_hat: float, sigma2_hat: float) -> tuple[bool, bool]:
    """Whether the generated mode weight and within-mode variance are within ``P_TOLERANCE``/``SIGMA2_TOLERANCE``."""
    return (abs(p_hat - mixture.p) <= P_TOLERANCE, abs(sigma2_hat / mixture.sigma2 - 1) <= SIGMA2_TOLERANCE)


def generate_mixture(mixture: TwoModeMixture, kind: str, steps: int, count: int = 1000, seed: int = 0,
                     dilation_k: float = 3.0) -> MixtureSamples:
    """Euler on the exact drift over ``steps`` uniform steps in t, from the path's t = 0 marginal
    ``α(0) x0 + β(0) x1`` (pure noise for both paths: β(0) = 0)."""
    schedule = mixture_schedule(kind, mixture.d, dilation_k)
    start = schedule(0.0)
    samples = initial_samples(mixture, float(start.alpha), float(start.beta), count, seed)
    return reduced_euler(mixture, schedule, samples, torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64))


def fewest_steps(succeeds: Callable[[int], bool], max_steps: int = 4096) -> int | None:
    """The fewest steps for which ``succeeds`` holds, assuming it keeps holding beyond: doubling, then
    bisection; None when even ``max_steps`` does not."""
    high = 1
    while not succeeds(high):
        high *= 2
        if high > max_steps:
            return None
    low = high // 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if succeeds(middle) else (middle, high)
    return high


def steps_to_recover(mixture: TwoModeMixture, kind: str, *, count: int = 1000, seeds: int = 1,
                     dilation_k: float = 3.0, max_steps: int = 4096) -> int | None:
    """The fewest Euler steps whose samples recover both p and σ² (``recovered``) for every seed (``fewest_steps``:
    the error falls with the step count)."""
    def both(steps: int) -> bool:
        return all(all(recovered(mixture, *mode_statistics(generate_mixture(mixture, kind, steps, count, seed,
                                                                            dilation_k))))
                   for seed in range(seeds))

    return fewest_steps(both, max_steps)


def dimension_sweep(*, p: float = 0.8, sigma2: float = 0.5, dimensions: tuple[int, ...] = (100, 1000, 10_000, 100_000),
                    count: int = 500, dilation_k: float = 3.0) -> dict[str, list[int | None]]:
    """``steps_to_recover`` for every schedule at every d: paper 003's complexity claim, O(√d) for the uniform grids
    and O(1) for the dilated ones (``benchmarks/noise_schedules.py`` prints it with more samples and seeds)."""
    return {kind: [steps_to_recover(TwoModeMixture(d, p, sigma2), kind, count=count, dilation_k=dilation_k)
                   for d in dimensions] for kind in MIXTURE_SCHEDULES}
