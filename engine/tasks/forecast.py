"""The emulator training tasks of paper 001 and its baselines: pairs ``(u_n, u_{n+lead})`` and their losses;
diffusion: EDM's denoising loss for u_{n+lead} given u_n.

forecast: the stochastic interpolant ``I_t = (1 − t) x + t y + σ(1 − t)√t z`` regressed on ``(y − x) − σ√t z``
(antithetic ±z); noise_baseline: flow matching from Gaussian noise to y given x; pointwise: a residual U-Net on
an unrolled multi-step MSE. The models and samplers are in ``engine.forecast``; docs/science.md has the math.
"""
from __future__ import annotations

from pathlib import Path

import torch

from engine.config import ForecastConfig, options
from engine.data.sequences import Trajectories
from engine.errors import EngineError
from engine.forecast import EDM_P_MEAN, EDM_P_STD, IN_CHANNELS, edm_scalings, si_interpolant, unrolled_mse

Tensor = torch.Tensor


class ForecastTask:
    """Training pairs (u_n, u_{n+lead}) drawn across trajectories and times, and the task's regression loss."""

    spatial_dims = 2

    def __init__(self, data: Trajectories, config: ForecastConfig):
        self.data, self.config, self.kind = data, config, config.task
        self.in_channels = IN_CHANNELS[config.task]
        self.horizon = config.lead * (config.unroll if config.task == "pointwise" else 1)
        if data.fields.shape[1] <= self.horizon:
            raise EngineError(f"trajectories of {data.fields.shape[1]} snapshots are too short for lead {config.lead}"
                              + (f" × unroll {config.unroll}" if config.task == "pointwise" else ""))

    def to(self, device: torch.device) -> None:
        self.device, self.fields = device, self.data.fields.to(device)

    def describe(self) -> dict:
        return {"configs": {"forecast": options(self.config)},
                "data": {"n": self.data.n, "mean": self.data.mean, "std": self.data.std, "dt": self.data.dt,
                         "variable": self.data.variable, "source": Path(self.data.source).name}}

    def windows(self, batch: int, generator: torch.Generator) -> Tensor:
        """(batch, horizon/lead + 1, n, n): states lead apart, from random trajectories and start times."""
        traj, length = self.fields.shape[:2]
        i = torch.randint(traj, (batch,), generator=generator, device=self.device)
        t0 = torch.randint(length - self.horizon, (batch,), generator=generator, device=self.device)
        offsets = torch.arange(0, self.horizon + 1, self.config.lead, device=self.device)
        return self.fields[i[:, None], t0[:, None] + offsets[None, :]]

    def draw(self, batch: int, generator: torch.Generator) -> tuple:
        """Everything random in a batch, batch-first: the windows, and for the flows times t and noise z."""
        window = self.windows(batch, generator)
        if self.kind == "pointwise":
            return (window,)
        if self.kind == "diffusion":  # EDM's training levels: ln σ ~ N(P_mean, P_std²)
            level = torch.randn(batch, generator=generator, device=self.device) * EDM_P_STD + EDM_P_MEAN
            t = level.exp()
        else:
            t = torch.rand(batch, generator=generator, device=self.device)
        return window, t, torch.randn(window[:, 0].shape, generator=generator, device=self.device)

    def loss(self, net: torch.nn.Module, drawn: tuple) -> Tensor:
        """The unrolled MSE (pointwise) or ``½ mean |b_θ(t, x, I_t) − target|²`` over a drawn batch."""
        if self.kind == "pointwise":
            return unrolled_mse(net, drawn[0])
        window, t, z = drawn
        x, y = window[:, 0], window[:, 1]
        if self.kind == "diffusion":  # EDM: λ(σ)|D − y|² = |F_θ − (y − c_skip y_σ)/c_out|², y_σ = y + σ z
            c_skip, c_out, c_in, c_noise = edm_scalings(t)
            noisy = y + t[:, None, None] * z
            prediction = net(torch.stack([x, c_in * noisy], 1), c_noise)[:, 0]
            return torch.mean((prediction.float() - (y - c_skip * noisy) / c_out) ** 2)
        if self.kind == "forecast":  # antithetic pair ±z in one batch
            x, y, t, z = torch.cat([x, x]), torch.cat([y, y]), torch.cat([t, t]), torch.cat([z, -z])
            interpolant, target = si_interpolant(x, y, z, t, self.config.sigma)
        else:
            tb = t[:, None, None]
            interpolant, target = (1 - tb) * z + tb * y, y - z
        prediction = net(torch.stack([x, interpolant], 1), t)[:, 0]
        return 0.5 * torch.mean((prediction.float() - target) ** 2)
