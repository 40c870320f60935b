"""The predictor-driven-diffusion training task (paper 002): sequences coarse-grained at random λ and the paper's
increment regression ``mean(((x_{n+1} − x_n) − F_θ(x_n; λ))² / mean_k Q_k(λ))`` in normalized units.

The forward process, predictor and samplers are in ``engine.pdd``; docs/science.md has the math.
"""
from __future__ import annotations

from pathlib import Path

import torch

from engine.coarse import OUProcess, reference_a
from engine.config import PDDConfig, options
from engine.data.sequences import Trajectories
from engine.errors import EngineError
from engine.models import build_unet
from engine.pdd import forward_sample, increments, mean_variance, mode_power

Tensor = torch.Tensor


class PDDTask:
    """Training sequences coarse-grained at random λ and the paper's increment regression loss."""

    kind = "pdd"

    def __init__(self, data: Trajectories, config: PDDConfig):
        self.data, self.spatial_dims = data, 1 if data.fields.dim() == 3 else 2  # Lorenz-96 (…, k), or fields
        a = config.a if config.a is not None else reference_a(self.spatial_dims)
        self.config = PDDConfig(**{**options(config), "a": a})
        self.process = OUProcess(a, config.b2, self.spatial_dims)
        self.window, self.frames = config.window, config.frames
        if data.fields.shape[1] < config.frames:
            raise EngineError(f"trajectories of {data.fields.shape[1]} snapshots are shorter than {config.frames} "
                              f"frames")

    def network(self, size: str) -> torch.nn.Module:
        """The predictor: a U-Net over the window's frames (1-D or 2-D), each frame's C fields as channels."""
        channels = self.data.channels
        return build_unet(size, in_channels=self.window * channels, out_channels=channels, ndim=self.spatial_dims)

    def to(self, device: torch.device) -> None:
        self.device, self.fields = device, self.data.fields.to(device)

    def describe(self) -> dict:
        several = {"variables": list(self.data.variables)} if self.data.channels > 1 else {}
        return {"configs": {"pdd": options(self.config)},
                "data": {"n": self.data.n, "ndim": self.spatial_dims, "mean": self.data.mean, "std": self.data.std,
                         "dt": self.data.dt, "variable": self.data.variable, "source": Path(self.data.source).name,
                         "power": mode_power(self.data.fields, self.spatial_dims, self.data.channels), **several}}

    def sequences(self, batch: int, generator: torch.Generator) -> Tensor:
        """(batch, frames, *grid): consecutive frames from random trajectories and start times."""
        traj, length = self.fields.shape[:2]
        i = torch.randint(traj, (batch,), generator=generator, device=self.device)
        t0 = torch.randint(length - self.frames + 1, (batch,), generator=generator, device=self.device)
        return self.fields[i[:, None], t0[:, None] + torch.arange(self.frames, device=self.device)[None]]

    def draw(self, batch: int, generator: torch.Generator) -> tuple:
        """Everything random in a batch, batch-first: levels λ and the sequences coarse-grained to them."""
        lam = torch.rand(batch, generator=generator, device=self.device)
        lam = lam**2 if self.config.lam_sampling == "quadratic" else lam
        return lam, forward_sample(self.sequences(batch, generator), lam, self.process, generator)

    def loss(self, net: torch.nn.Module, drawn: tuple) -> Tensor:
        """``mean(((x_{n+1} − x_n) − F_θ(x_n; λ))² / mean_k Q_k(λ))`` over a drawn batch."""
        lam, x = drawn
        prediction = increments(net, x, lam, self.window, self.spatial_dims)
        residual = (x[:, 1:] - x[:, :-1]) - prediction
        variance = mean_variance(self.process, lam, self.data.n).float()
        return torch.mean(residual.pow(2).flatten(1) / variance[:, None])
