"""Emulators of ``u_n → u_{n+1}``: the stochastic-interpolant forecaster and its baselines (science.md §2).

SI forecaster (paper 001): ``I_t = (1 − t) x + t y + σ(1 − t)√t z`` between the current state x and the next
y; the drift ``b(t, I; x) = E[(y − x) − σ√t z | I_t, x]`` is learned by regression (antithetic ±z) with the
network seeing cat(x, I_t). With diffusion ``g(t)`` the SDE ``dY = [b + ½(g² − σ_t²) s] dt + g dW``,
``σ_t = σ(1 − t)``, has the interpolant's marginals for every g; the score follows from b:
``σ_t² s = (1 − t)(t b − (Y − x))/t``. We use ``g = ε σ_t``: ε = 1 needs no score (SI-EM), ε = 0 is the
exact probability-flow ODE (SI-E); ``drop_noise`` is Euler on b alone (the reference code's "euler").

Baselines: a conditional generator from Gaussian noise, ``I_t = (1 − t) z + t y`` given x (flow matching,
the "many steps" comparison), and a pointwise U-Net predicting ``y − x``, optionally trained on an unrolled
multi-step MSE (paper 004, appendix B.2). Fields are normalized by the dataset's mean and std.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.checkpoints import load_checkpoint
from engine.config import ForecastConfig, ForecastSamplerConfig, options
from engine.data.store import check_fields, field_variable, open_dataset
from engine.errors import EngineError
from engine.models import build_unet

Tensor = torch.Tensor


@dataclass
class Trajectories:
    """Normalized trajectories ``(trajectory, time, n, n)`` float32 with the normalization and the time step."""

    fields: Tensor
    mean: float
    std: float
    dt: float
    variable: str
    source: str = ""

    @property
    def n(self) -> int:
        return self.fields.shape[-1]

    def denormalize(self, x: Tensor) -> Tensor:
        return x * self.std + self.mean


def load_trajectories(path: str | Path, variable: str | None = None, min_length: int = 2) -> Trajectories:
    """Read ``(trajectory, time, y, x)`` (or ``(time, y, x)``) fields, validated, normalized to zero mean, unit std."""
    path = Path(path)
    with open_dataset(path) as ds:
        name = field_variable(ds, variable, path.name)
        dims = ds[name].dims
        if "time" not in dims[:-2]:
            raise EngineError(f"{path.name}: {name}{tuple(dims)} has no time dim; forecasting needs (…, time, y, x)")
        da = ds[name].transpose(..., "time", "y", "x")
        _, values = check_fields(da.to_dataset(), name, path.name)
        fields = torch.from_numpy(values.reshape(-1, da.sizes["time"], *values.shape[-2:]))
        times = np.asarray(ds["time"].values, dtype=float) if "time" in ds.coords else np.arange(da.sizes["time"])
    if fields.shape[1] < min_length:
        raise EngineError(f"{path.name}: {fields.shape[1]} snapshots per trajectory; this needs at least {min_length}")
    mean, std = float(fields.mean()), float(fields.std())
    if not std > 0:
        raise EngineError(f"{path.name}: {name} is constant; there is nothing to learn")
    return Trajectories((fields - mean) / std, mean, std, snapshot_spacing(times), name, str(path))


def snapshot_spacing(times: np.ndarray) -> float:
    """Δt between saved snapshots: the median step of the time coordinate (1 for a single snapshot)."""
    return float(np.median(np.diff(times))) if len(times) > 1 else 1.0


def same_spacing(dt: float, other: float) -> bool:
    """Two snapshot spacings agree (to the rounding of a saved time coordinate)."""
    return math.isclose(dt, other, rel_tol=1e-3)


def check_time_step(trained_dt: float, data: Trajectories, checkpoint: str, store) -> None:
    """A one-step model (``u_n → u_{n+1}``) applies only to snapshots saved at the Δt it was trained on; the error
    names the datasets in ``store`` that fit."""
    if not same_spacing(trained_dt, data.dt):
        fitting = datasets_for(store, data.n, trained_dt)
        raise EngineError(f"{checkpoint} was trained on snapshots Δt = {trained_dt:g} apart; {Path(data.source).name} "
                          f"is saved every {data.dt:g}: choose data saved every {trained_dt:g}"
                          + (f" ({', '.join(fitting)})" if fitting else ""))


def datasets_for(store, n: int, dt: float) -> list[str]:
    """The datasets at the top of the folder (not results in its sub-folders) a one-step model trained on n² fields
    saved every ``dt`` applies to: (…, time, y, x) fields on that grid at that spacing; names, sorted."""
    return [name for name in store.names() if "/" not in name and dataset_fits(store, name, n, dt)]


def dataset_fits(store, name: str, n: int, dt: float) -> bool:
    """Whether dataset ``name`` holds (…, time, y, x) fields on an n² grid saved every ``dt``."""
    try:
        with store.open(name) as ds:
            times = np.asarray(ds["time"].values) if "time" in ds.coords else np.zeros(0)
            if times.size < 2 or not np.issubdtype(times.dtype, np.number):
                return False
            spaced = same_spacing(snapshot_spacing(times), dt)
            return spaced and any(da.dims[-3:] == ("time", "y", "x") and da.shape[-1] == da.shape[-2] == n
                                  for da in ds.data_vars.values())
    except EngineError:  # unreadable files are listed (with their error) by the Data view, not here
        return False


class ForecastTask:
    """Training pairs (u_n, u_{n+lead}) drawn across trajectories and times, and the task's regression loss."""

    in_channels_by_task = {"forecast": 2, "noise_baseline": 2, "pointwise": 1}

    def __init__(self, data: Trajectories, config: ForecastConfig):
        self.data, self.config, self.kind = data, config, config.task
        self.in_channels = self.in_channels_by_task[config.task]
        self.horizon = config.lead * (config.unroll if config.task == "pointwise" else 1)
        if data.fields.shape[1] <= self.horizon:
            raise EngineError(f"trajectories of {data.fields.shape[1]} snapshots are too short for lead {config.lead}"
                              + (f" × unroll {config.unroll}" if config.task == "pointwise" else ""))

    def to(self, device: torch.device) -> None:
        self.device, self.fields = device, self.data.fields.to(device)

    def describe(self) -> dict:
        return {"configs": {"forecast": options(self.config)},
                "data": {"n": self.data.n, "mean": self.data.mean, "std": self.data.std, "dt": self.data.dt,
                         "variable": self.data.variable, "source": self.data.source}}

    def windows(self, batch: int, generator: torch.Generator) -> Tensor:
        """(batch, horizon/lead + 1, n, n): states lead apart, from random trajectories and start times."""
        traj, length = self.fields.shape[:2]
        i = torch.randint(traj, (batch,), generator=generator, device=self.device)
        t0 = torch.randint(length - self.horizon, (batch,), generator=generator, device=self.device)
        offsets = torch.arange(0, self.horizon + 1, self.config.lead, device=self.device)
        return self.fields[i[:, None], t0[:, None] + offsets[None, :]]

    def loss(self, net: torch.nn.Module, batch: int, generator: torch.Generator) -> Tensor:
        window = self.windows(batch, generator)
        if self.kind == "pointwise":
            return unrolled_mse(net, window)
        x, y = window[:, 0], window[:, 1]
        t = torch.rand(batch, generator=generator, device=self.device)
        z = torch.randn(x.shape, generator=generator, device=self.device)
        if self.kind == "forecast":  # antithetic pair ±z in one batch
            x, y, t, z = torch.cat([x, x]), torch.cat([y, y]), torch.cat([t, t]), torch.cat([z, -z])
            interpolant, target = si_interpolant(x, y, z, t, self.config.sigma)
        else:
            tb = t[:, None, None]
            interpolant, target = (1 - tb) * z + tb * y, y - z
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            prediction = net(torch.stack([x, interpolant], 1), t)[:, 0]
        return 0.5 * torch.mean((prediction.float() - target) ** 2)


def si_interpolant(x: Tensor, y: Tensor, z: Tensor, t: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
    """``I_t = (1 − t)x + t y + σ(1 − t)√t z`` and the reference target ``(y − x) − σ√t z``; t: (batch,)."""
    tb = t.to(x.dtype)[:, None, None]
    return (1 - tb) * x + tb * y + sigma * (1 - tb) * tb.sqrt() * z, (y - x) - sigma * tb.sqrt() * z


def unrolled_mse(net: torch.nn.Module, window: Tensor) -> Tensor:
    """Mean over k of ``|û_k − u_k|²`` with ``û_{k+1} = û_k + F_θ(û_k)`` from ``û_0 = u_0``: window (batch, K + 1, n, n)."""
    state, losses = window[:, 0], []
    zero_t = torch.zeros(window.shape[0], device=window.device)
    for k in range(1, window.shape[1]):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=window.device.type == "cuda"):
            residual = net(state[:, None], zero_t)[:, 0]
        state = state + residual.float()
        losses.append(torch.mean((state - window[:, k]) ** 2))
    return torch.stack(losses).mean()


def si_sde_drift(b: Tensor, y: Tensor, x: Tensor, t: float, eps: float) -> Tensor:
    """``b + ½(g² − σ_t²) s`` with g = ε σ_t and ``σ_t² s = (1 − t)(t b − (y − x))/t`` (= (1 − t) b at t = 0, y = x)."""
    if eps == 1.0:
        return b
    score_term = (1 - t) * (b - (y - x) / t) if t > 0 else b
    return b + 0.5 * (eps**2 - 1) * score_term


class Forecaster:
    """A trained emulator as a map ``u_n → u_{n+lead}`` in physical units, batched: (batch, n, n) → (batch, n, n)."""

    def __init__(self, net: torch.nn.Module, kind: str, sigma: float, mean: float, std: float, dt: float,
                 n: int = 0, lead: int = 1):
        self.net, self.kind, self.sigma, self.mean, self.std, self.dt = net.eval(), kind, sigma, mean, std, dt
        self.n, self.lead, self.nfe = n, lead, 0

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def _net(self, inputs: Tensor, t: float) -> Tensor:
        self.nfe += 1
        times = torch.full((inputs.shape[0],), float(t), device=inputs.device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=inputs.device.type == "cuda"):
            return self.net(inputs, times)[:, 0].float()

    @torch.no_grad()
    def step(self, u: Tensor, sampler: ForecastSamplerConfig, generator: torch.Generator | None = None) -> Tensor:
        """One forecast of every state in the batch with the sampler's method, steps and ε."""
        x = (u.float() - self.mean) / self.std
        if self.kind == "pointwise":
            return (x + self._net(x[:, None], 0.0)) * self.std + self.mean
        ts = torch.linspace(0.0, 1.0, sampler.steps + 1).tolist()
        y = x.clone() if self.kind == "forecast" else torch.randn(x.shape, generator=generator, device=x.device)
        eps = 0.0 if sampler.method == "ode" else sampler.eps
        for t, t_next in zip(ts[:-1], ts[1:]):
            h = t_next - t
            b = self._net(torch.stack([x, y], 1), t)
            if self.kind != "forecast":  # the Gaussian-noise baseline integrates its flow ODE
                y = y + h * b
            elif sampler.method == "drop_noise":
                y = y + h * b
            else:
                y = y + h * si_sde_drift(b, y, x, t, eps)
                if eps > 0:
                    white = torch.randn(y.shape, generator=generator, device=y.device)
                    y = y + eps * self.sigma * (1 - t) * h**0.5 * white
        return y * self.std + self.mean


FORECAST_TASKS = ("forecast", "noise_baseline", "pointwise")


def load_forecaster(path: str | Path, device: torch.device | str = "cpu") -> Forecaster:
    """A forecaster from a checkpoint of a forecast, noise_baseline or pointwise training run (EMA weights)."""
    state = load_checkpoint(path, device)
    kind = state.get("task", "generate")
    if kind not in FORECAST_TASKS:
        raise EngineError(f"{path} holds a '{kind}' model, not a forecaster; train one with --task forecast or pointwise")
    configs, data = state["configs"], state["data"]
    net = build_unet(configs["model"]["size"], in_channels=ForecastTask.in_channels_by_task[kind]).to(device)
    net.load_state_dict(state["ema_state"])
    forecast = configs["forecast"]
    return Forecaster(net, kind, forecast["sigma"], data["mean"], data["std"], data["dt"], data["n"], forecast["lead"])
