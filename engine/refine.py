"""Refinement of drifting rollout states toward the data distribution (paper 004, Thermalizer variant).

A generative model of the stationary distribution (white noise, any schedule) pulls drifting states back.
Each state's noise level is estimated from its spectrum: the interpolant's spectrum at time t is
``α(t)² S_n + β(t)² S_d``, and t* minimizes the mean |log| mismatch with the state's shell spectrum on the fine
half of the shells (where drift shows first). States whose noise fraction α(t*)² exceeds ``start`` are
integrated by the probability-flow ODE from t* to 1. This spectral estimate replaces the paper's learned
noise-level classifier: no extra network, exact for Gaussian data, but one state at a time. Paper 004's own method,
a pair denoiser with learned level heads, is ``engine.sns``; ``load_refiner`` loads either. docs/science.md has both.
"""
from __future__ import annotations

from pathlib import Path

import torch

from engine.checkpoints import load_checkpoint
from engine.config import ForecastSamplerConfig, NoiseConfig, ScheduleConfig
from engine.data.fields import FieldData, StateFieldData
from engine.errors import EngineError
from engine.forecast import load_forecaster
from engine.generation import checkpoint_setup
from engine.noise import colour
from engine.sns import SelfRefiner
from engine.spectral import shell_spectra, shell_sum

Tensor = torch.Tensor
LEVEL_GRID = 400  # candidate times t* in [0, 1) for the noise-level estimate


class Refiner:
    """Thermalizer-style refinement with a generative drift ``b(t, x)`` (physical units, per-sample t allowed).

    ``renoise`` > 0 adds the SNS-style forward step for states that look cleaner than that noise fraction
    (over-smoothed ones included): ``x_t = α(t) z + β(t) x`` at the level where α² = renoise, then denoise.
    States of C fields: ``noise_power`` and ``data_power`` (C, n, n) are each field's, the mismatch is averaged
    over the fields' shells, and ``colour_noise`` (white → noise, across the fields) draws z.
    """

    def __init__(self, drift, schedule, noise_power: Tensor, data_power: Tensor, steps: int = 8, start: float = 1e-3,
                 renoise: float = 0.0, seed: int = 0, colour_noise=None):
        self.drift, self.schedule, self.steps, self.start, self.renoise = drift, schedule, steps, start, renoise
        self.nfe = 0  # drift evaluations so far
        self.noise_power, self.generator = noise_power, torch.Generator(noise_power.device).manual_seed(seed)
        self.colour_noise = colour_noise or (lambda white: colour(white, noise_power))
        self.noise_shells, self.data_shells = shell_sum(noise_power.cpu()), shell_sum(data_power.cpu())
        n = noise_power.shape[-1]
        self.fine = torch.arange(n // 2 + 1) >= max(1, n // 4)  # the fine half of the shells
        self.ts = torch.linspace(0.0, 1.0, LEVEL_GRID + 1, dtype=torch.float64)[:-1]
        c = schedule(self.ts)
        per_level = (-1,) + (1,) * self.noise_shells.dim()
        model = (c.alpha.reshape(per_level) ** 2 * self.noise_shells[None]
                 + c.beta.reshape(per_level) ** 2 * self.data_shells[None])
        self.log_model = torch.log(model[..., self.fine].clamp(min=1e-300)).flatten(1)  # (levels, [fields ×] shells)

    def noise_level(self, x: Tensor) -> Tensor:
        """Estimated interpolant time t* of each state: (batch, [C,] n, n) → (batch,) float64."""
        measured = torch.log(shell_spectra(x.cpu())[..., self.fine].clamp(min=1e-300)).flatten(1)
        mismatch = (measured[:, None, :] - self.log_model[None]).abs().mean(-1)  # (batch, levels)
        return self.ts[mismatch.argmin(1)]

    def _renoised(self, x: Tensor, t_star: Tensor) -> tuple[Tensor, Tensor]:
        """States cleaner than ``renoise`` moved forward to that level: (states, their levels)."""
        fractions = self.schedule(self.ts).alpha ** 2
        level = self.ts[fractions >= self.renoise].max()  # the latest time with at least that much noise
        clean = (t_star > level).to(x.device)
        if not bool(clean.any()):
            return x, t_star
        c = self.schedule(level)
        white = torch.randn(int(clean.sum()), *x.shape[1:], generator=self.generator, device=self.noise_power.device)
        z = self.colour_noise(white).to(x.device, x.dtype)
        x = x.clone()
        x[clean] = float(c.alpha) * z + float(c.beta) * x[clean]
        return x, torch.where(clean.cpu(), level, t_star)

    @torch.no_grad()
    def __call__(self, x: Tensor, previous: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Refined states and a (batch,) bool mask of those that were refined (one state at a time: ``previous``,
        which SNS conditions on, is not used)."""
        t_star = self.noise_level(x)
        if self.renoise > 0:
            x, t_star = self._renoised(x, t_star)
        noisy = self.schedule(t_star).alpha ** 2 > self.start
        if not bool(noisy.any()):
            return x, noisy
        t = t_star[noisy].to(x.device)
        y, h = x[noisy.to(x.device)].to(torch.float64), (1 - t) / self.steps
        per_state = h.reshape((-1,) + (1,) * (x.dim() - 1))
        for i in range(self.steps):
            y = y + per_state * self.drift(t + i * h, y.to(x.dtype)).to(torch.float64)
        self.nfe += self.steps
        out = x.clone()
        out[noisy.to(x.device)] = y.to(x.dtype)
        return out, noisy


def load_refiner(path: str | Path, device: torch.device, *, steps: int = 8, start: float = 1e-3,
                 renoise: float = 0.0, sns_steps: int = 0) -> Refiner | SelfRefiner:
    """A refiner from a checkpoint: a generative model of the stationary fields (``train --task refiner``, this
    module's spectral-estimate Thermalizer) or paper 004's pair denoiser (``train --task sns``, ``engine.sns``, at
    most ``sns_steps`` reverse steps per frame, 0: every level; ``renoise``, the least noise fraction, applies to
    both)."""
    state = load_checkpoint(path, "cpu")
    if state.get("task", "generate") == "sns":
        return load_forecaster(path, device).self_refiner(ForecastSamplerConfig(), steps=sns_steps, renoise=renoise)
    if state.get("task", "generate") != "generate":
        raise EngineError(f"{path} holds a '{state['task']}' model; a refiner is a generative model (--task refiner) "
                          f"or an SNS pair denoiser (--task sns)")
    trained, data = state["configs"], state["data"]
    n = data["n"]
    if "variables" in data:
        variables = tuple(data["variables"])
        fields = StateFieldData(torch.empty(0, len(variables), n, n), data["cross_spectrum"], variables, {}, {})
    else:
        fields = FieldData(torch.empty(0, n, n), data["spectrum"], data["variable"], {})
    noise, schedule = NoiseConfig(**trained["noise"]), ScheduleConfig(**trained["schedule"])
    setup = checkpoint_setup(path, fields, noise, schedule, device)
    return Refiner(setup.drift, setup.schedule, setup.noise_power.to(device), setup.data_power.to(device), steps, start,
                   renoise, colour_noise=setup.colour)
