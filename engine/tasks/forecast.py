"""The emulator training tasks of paper 001 and its baselines: pairs ``(u_n, u_{n+lead})`` and their losses;
diffusion: EDM's denoising loss for u_{n+lead} given u_n; ddpm: DDPM's ``|ε̂_θ(u_n, y_s, s) − ε|²`` with
``y_s = √ᾱ_s y + √(1 − ᾱ_s) ε``, s uniform in 1…K; sns: paper 004's pair denoiser (``engine.sns``).

forecast: the stochastic interpolant ``I_t = (1 − t) x + t y + σ(1 − t)√t z`` regressed on ``(y − x) − σ√t z``
(antithetic ±z); noise_baseline: flow matching from Gaussian noise to y given x; pointwise: a residual U-Net on
an unrolled multi-step MSE, and fno the same with a Fourier neural operator. The models and samplers are in
``engine.forecast``; docs/science.md has the math.
"""
from __future__ import annotations

from pathlib import Path

import torch

from engine.config import ForecastConfig, options
from engine.data.sequences import Trajectories
from engine.errors import EngineError
from engine.forecast import (
    EDM_P_MEAN,
    EDM_P_STD,
    RESIDUAL_TASKS,
    edm_scalings,
    forecast_network,
    si_interpolant,
    unrolled_mse,
)
from engine.sns import cosine_alpha_bar, renoised, sns_loss

Tensor = torch.Tensor


class ForecastTask:
    """Training pairs (u_n, u_{n+lead}) drawn across trajectories and times, and the task's regression loss."""

    spatial_dims = 2

    def __init__(self, data: Trajectories, config: ForecastConfig):
        self.data, self.config, self.kind = data, config, config.task
        unrolled = config.task in RESIDUAL_TASKS
        self.horizon = config.lead * (config.unroll if unrolled else 1)
        if data.fields.shape[1] <= self.horizon:
            raise EngineError(f"trajectories of {data.fields.shape[1]} snapshots are too short for lead {config.lead}"
                              + (f" × unroll {config.unroll}" if unrolled else ""))

    def network(self, size: str) -> torch.nn.Module:
        """The emulator's network over the data's channels (``engine.forecast.forecast_network``)."""
        return forecast_network(self.kind, size, self.config.levels, channels=self.data.channels)

    def to(self, device: torch.device) -> None:
        fields = self.data.fields if self.data.channels > 1 else self.data.fields[:, :, None]
        self.device, self.fields = device, fields.to(device)  # (trajectory, time, C, n, n)
        self.alpha_bar = cosine_alpha_bar(self.config.levels).float().to(device)

    def describe(self) -> dict:
        return {"configs": {"forecast": options(self.config)},
                "data": {"n": self.data.n, **self.data.normalization(), "dt": self.data.dt,
                         "variable": self.data.variable, "variables": list(self.data.variables),
                         "source": Path(self.data.source).name}}

    def windows(self, batch: int, generator: torch.Generator) -> Tensor:
        """(batch, horizon/lead + 1, C, n, n): states lead apart, from random trajectories and start times."""
        traj, length = self.fields.shape[:2]
        i = torch.randint(traj, (batch,), generator=generator, device=self.device)
        t0 = torch.randint(length - self.horizon, (batch,), generator=generator, device=self.device)
        offsets = torch.arange(0, self.horizon + 1, self.config.lead, device=self.device)
        return self.fields[i[:, None], t0[:, None] + offsets[None, :]]

    def draw(self, batch: int, generator: torch.Generator) -> tuple:
        """Everything random in a batch, batch-first: the windows, and for the flows times t and noise z (sns: two
        independent levels in 0…K and noise for both frames)."""
        window = self.windows(batch, generator)
        if self.kind in RESIDUAL_TASKS:
            return (window,)
        if self.kind == "sns":
            levels = torch.randint(self.config.levels + 1, (batch, 2), generator=generator, device=self.device)
            return window, levels, torch.randn(window.shape, generator=generator, device=self.device)
        if self.kind == "ddpm":  # a level s in 1…K per sample (DDPM's uniform draw)
            t = torch.randint(1, self.config.levels + 1, (batch,), generator=generator, device=self.device)
        elif self.kind == "diffusion":  # EDM's training levels: ln σ ~ N(P_mean, P_std²)
            level = torch.randn(batch, generator=generator, device=self.device) * EDM_P_STD + EDM_P_MEAN
            t = level.exp()
        else:
            t = torch.rand(batch, generator=generator, device=self.device)
        return window, t, torch.randn(window[:, 0].shape, generator=generator, device=self.device)

    def loss(self, net: torch.nn.Module, drawn: tuple) -> Tensor:
        """The unrolled MSE (pointwise, fno), DDPM's ε-loss, EDM's or ``½ mean |b_θ(t, x, I_t) − target|²`` over a
        drawn batch."""
        if self.kind in RESIDUAL_TASKS:
            return unrolled_mse(net, drawn[0])
        if self.kind == "sns":
            return sns_loss(net, *drawn, self.alpha_bar)
        window, t, z = drawn
        x, y = window[:, 0], window[:, 1]
        if self.kind == "ddpm":
            noisy = renoised(y, self.alpha_bar[t], z)
            prediction = net(torch.cat([x, noisy], 1), t.float() / self.config.levels)
            return torch.mean((prediction.float() - z) ** 2)
        if self.kind == "diffusion":  # EDM: λ(σ)|D − y|² = |F_θ − (y − c_skip y_σ)/c_out|², y_σ = y + σ z
            c_skip, c_out, c_in, c_noise = edm_scalings(t)
            noisy = y + t[:, None, None, None] * z
            prediction = net(torch.cat([x, c_in * noisy], 1), c_noise)
            return torch.mean((prediction.float() - (y - c_skip * noisy) / c_out) ** 2)
        if self.kind == "forecast":  # antithetic pair ±z in one batch
            x, y, t, z = torch.cat([x, x]), torch.cat([y, y]), torch.cat([t, t]), torch.cat([z, -z])
            interpolant, target = si_interpolant(x, y, z, t, self.config.sigma)
        else:
            tb = t[:, None, None, None]
            interpolant, target = (1 - tb) * z + tb * y, y - z
        prediction = net(torch.cat([x, interpolant], 1), t)
        return 0.5 * torch.mean((prediction.float() - target) ** 2)
