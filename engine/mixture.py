"""A two-mode Gaussian mixture in d dimensions with its exact interpolant drift (paper 003, science.md §4).

Data ``x1 ~ p N(μ, σ²I) + (1 − p) N(−μ, σ²I)`` with μ = (1, …, 1), noise ``x0 ~ N(0, I)``, path
``x_t = α x0 + β x1``. Given the mode, x_t is Gaussian with mean ±βμ and variance ``v = α² + β²σ²``, so with
``m = 2 P(+ | x) − 1 = tanh(½ log(p/(1 − p)) + β x·μ / v)``:

    b(t, x) = (αα' + ββ'σ²)/v · (x − β m μ) + β' m μ.

Mode weights are decided where β|μ| ~ √v, i.e. β ~ 1/√d: a uniform grid with O(1) steps jumps over that window
(VP recovers σ² but not p); a time-dilated grid spends half its steps there and recovers both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from engine.errors import EngineError
from engine.schedules import make_schedule

Tensor = torch.Tensor
MIXTURE_SCHEDULES = ("vp", "vp_dilated", "ve", "ve_dilated")


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


def mode_statistics(x: Tensor) -> tuple[float, float]:
    """``(p̂, σ̂²)``: the fraction of samples on the + side (x·μ > 0) and the mean squared distance per coordinate
    to the nearer mode ±μ."""
    signs = torch.where(x.sum(-1, keepdim=True) > 0, 1.0, -1.0)
    return float((signs > 0).double().mean()), float(((x - signs) ** 2).mean())


def generate_mixture(mixture: TwoModeMixture, kind: str, steps: int, count: int = 1000, seed: int = 0,
                     dilation_k: float = 5.0) -> Tensor:
    """Euler on the exact drift over a uniform grid, from the path's exact t = 0 marginal ``α(0) x0 + β(0) x1``
    (pure noise for VP; VE keeps β(0) = 1, and with σ_max = √d the mode is still O(1)-visible there)."""
    if kind not in MIXTURE_SCHEDULES:
        raise EngineError(f"mixture schedules are {', '.join(MIXTURE_SCHEDULES)}, not {kind!r}")
    schedule = make_schedule(kind, dimension=mixture.d, dilation_k=dilation_k)
    drift = mixture.drift(schedule)
    generator = torch.Generator().manual_seed(seed)
    start = schedule(0.0)
    x = float(start.alpha) * torch.randn(count, mixture.d, generator=generator, dtype=torch.float64)
    if float(start.beta) != 0:
        x = x + float(start.beta) * mixture.sample(count, generator)
    ts = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    for t, t_next in zip(ts[:-1], ts[1:]):
        x = x + (t_next - t) * drift(t, x)
    return x
