"""Predictor-driven diffusion (PDD; Yasuda & Bischoff; science.md §3): one λ-conditioned predictor, three uses.

Forward process in λ (``engine.coarse``), applied to every frame of a sequence with independent noise:

    x̂_λ = e^{μ_k λ} x̂_0 + sqrt(Q_k(λ)) ε̂,   Q_k(λ) = b² (e^{2μ_k λ} − 1)/(2μ_k),   μ_k < 0 (Laplacian eigenvalue).

Predictor ``F_θ(x_{n−w+1..n}; λ) ≈ E[x_{n+1} − x_n | past]`` (a U-Net over the last w frames, zero-padded at the
start of a sequence, conditioned on λ), trained at λ ~ U[0, 1] (or λ = u², denser near 0) with the paper's loss
``mean(((x_{n+1} − x_n) − F_θ)² / mean_k Q_k(λ))`` in normalized units.

Path model: ``x_{n+1} = x_n + F_θ + η_n`` with Gaussian η of per-mode variance ``V_k(λ)``: the paper's
``r² mean_k Q_k(λ)`` (``scalar``) or ``r² Q_k(λ)`` (``spectral``: the variance the forward process actually gives
each mode; r = std_ratio), and a Gaussian first frame of per-mode variance ``v_k(λ) = e^{2μλ} P_k + Q_k`` (P_k: the data's).
Action ``S = ½ Σ_n Σ_k |r̂_{n,k}|²/V_k + ½ Σ_k |x̂_{0,k}|²/(e^{2μλ}P_k + Q_k)``, path score ``s = −∂S/∂x`` (autograd).
Q is floored at λ = 10⁻³ (the reference's first grid point), where the variance would vanish.

Reverse λ by the exponential (ETD1) step, from the input's λ to 0 (uniform grid, or geometric: ``lambda_grid``):

    x̂ ← e^{−μ dλ} x̂ + dλ w b² φ₁(−μ dλ) ŝ + b √dλ ε̂,   φ₁(z) = (e^z − 1)/z,

with w = 1 and noise (``sde``; none on the last step) or w = ½ and no noise (``ode``, the probability-flow ODE).
The ``gaussian`` integrator instead takes the exact step of Gaussian frames with the data's spectrum (score
``−x̂/v_k(λ)``: the DDPM-like posterior mean and noise per mode) and the ETD1 kick for the rest of the score: exact
for Gaussian fields at any step count, and stable on fine grids where ETD1 needs ``|μ|max dλ ≲ 1``.
Generation starts at λ = 1 from ``sqrt(Q(1)) ε``; super-resolution starts from a coarse input at its λ;
simulation at a fixed λ steps ``x_{n+1} = x_n + F_θ + η_n``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import xarray as xr

from engine.checkpoints import load_checkpoint
from engine.coarse import REFERENCE_CONSTANTS, OUProcess, check_lambda, ortho_fft, ortho_ifft
from engine.config import PDDConfig, PDDSamplerConfig, options
from engine.data.store import open_dataset
from engine.errors import EngineError
from engine.forecast import Trajectories, check_time_step, load_trajectories, snapshot_spacing
from engine.models import build_unet

Tensor = torch.Tensor
LAM_FLOOR = 1e-3  # Q_k(λ) is evaluated at max(λ, LAM_FLOOR): the path model needs a positive variance


def reference_a(ndim: int) -> float:
    """The reference diffusivity a: 0.3 for 2-D Kolmogorov fields, 0.1 for 1-D Lorenz-96."""
    return REFERENCE_CONSTANTS["kolmogorov" if ndim == 2 else "lorenz96"][0]


def load_sequences(path: str | Path, variable: str | None = None) -> Trajectories:
    """Normalized ``(trajectory, time, n, n)`` fields, or ``(trajectory, time, n)`` for 1-D data (Lorenz-96 ``slow``)."""
    path = Path(path)
    with open_dataset(path) as ds:
        if variable is None:
            two_d = any(da.dims[-2:] == ("y", "x") for da in ds.data_vars.values())
        else:  # a missing variable goes to load_trajectories too, which names the ones there are
            two_d = variable not in ds.data_vars or ds[variable].dims[-2:] == ("y", "x")
        if two_d:
            return load_trajectories(path, variable, min_length=2)
        names = [variable] if variable else [n for n, da in ds.data_vars.items() if "time" in da.dims[:-1]]
        if not names:
            raise EngineError(f"{path.name}: no variable with a time dim and a spatial dim after it")
        da = ds[names[0]]
        if "time" not in da.dims[:-1]:
            raise EngineError(f"{path.name}: {names[0]}{tuple(da.dims)} needs a time dim before its spatial dim")
        space = da.dims[-1]
        da = da.transpose(..., "time", space)
        values = np.asarray(da.values, dtype=np.float32)
        times = np.asarray(ds["time"].values, dtype=float) if "time" in ds.coords else np.arange(da.sizes["time"])
    n = values.shape[-1]
    if n % 2 or n < 4:
        raise EngineError(f"{path.name}: {names[0]} has {n} points along {space}; PDD needs an even periodic size ≥ 4")
    if not np.isfinite(values).all():
        raise EngineError(f"{path.name}: {names[0]} has NaN or infinite values")
    fields = torch.from_numpy(values.reshape(-1, values.shape[-2], n))
    mean, std = float(fields.mean()), float(fields.std())
    if not std > 0:
        raise EngineError(f"{path.name}: {names[0]} is constant; there is nothing to learn")
    return Trajectories((fields - mean) / std, mean, std, snapshot_spacing(times), names[0], str(path))


def mode_power(fields: Tensor, ndim: int) -> Tensor:
    """Per-mode variance ``P_k = mean |x̂_k|²`` (ortho FFT) over every leading index: (..., *grid) → grid, float64."""
    xh = ortho_fft(fields.to(torch.float64), ndim)
    return (xh.real**2 + xh.imag**2).reshape(-1, *fields.shape[-ndim:]).mean(0)


def forward_sample(x: Tensor, lam: Tensor, process: OUProcess, generator: torch.Generator | None = None) -> Tensor:
    """Every frame of x (batch, frames, *grid) at its sample's λ (batch,): ``e^{μλ} x̂ + sqrt(Q(λ)) ε̂``."""
    n, ndim = x.shape[-1], process.ndim
    damping = process.damping(lam, n, x.device).to(x.dtype).unsqueeze(1)
    spread = process.variance(lam, n, x.device).sqrt().to(x.dtype).unsqueeze(1)
    white = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return ortho_ifft(damping * ortho_fft(x, ndim) + spread * ortho_fft(white, ndim), ndim)


def phi1(z: Tensor) -> Tensor:
    """``φ₁(z) = (e^z − 1)/z``, 1 at z = 0."""
    small = z.abs() < 1e-12
    return torch.where(small, torch.ones_like(z), torch.expm1(z) / torch.where(small, torch.ones_like(z), z))


def window_stack(x: Tensor, window: int) -> Tensor:
    """Inputs of every transition n → n + 1 of x (batch, T, *grid): frames n − w + 1 … n, zeros before the start;
    → (batch·(T − 1), w, *grid)."""
    pad = x.new_zeros(x.shape[0], window - 1, *x.shape[2:])
    windows = torch.cat([pad, x[:, :-1]], 1).unfold(1, window, 1)  # (batch, T − 1, *grid, w)
    return windows.movedim(-1, 2).reshape(-1, window, *x.shape[2:])


def increments(net: torch.nn.Module, x: Tensor, lam: Tensor, window: int) -> Tensor:
    """``F_θ`` for every transition of x (batch, T, *grid) at λ (batch,): (batch, T − 1, *grid)."""
    batch, frames = x.shape[:2]
    out = net(window_stack(x, window), lam.float().repeat_interleave(frames - 1))[:, 0]
    return out.float().reshape(batch, frames - 1, *x.shape[2:])


def mean_variance(process: OUProcess, lam: Tensor, n: int) -> Tensor:
    """``mean_k Q_k(max(λ, 10⁻³))`` per sample: (batch,) → (batch,)."""
    q = process.variance(lam.clamp(min=LAM_FLOOR), n, lam.device)
    return q.reshape(lam.shape[0], -1).mean(1)


class PDDTask:
    """Training sequences coarse-grained at random λ and the paper's increment regression loss."""

    kind = "pdd"

    def __init__(self, data: Trajectories, config: PDDConfig):
        self.data, self.spatial_dims = data, data.fields.dim() - 2
        a = config.a if config.a is not None else reference_a(self.spatial_dims)
        self.config = PDDConfig(**{**options(config), "a": a})
        self.process = OUProcess(a, config.b2, self.spatial_dims)
        self.in_channels, self.window, self.frames = config.window, config.window, config.frames
        if data.fields.shape[1] < config.frames:
            raise EngineError(f"trajectories of {data.fields.shape[1]} snapshots are shorter than {config.frames} frames")

    def to(self, device: torch.device) -> None:
        self.device, self.fields = device, self.data.fields.to(device)

    def describe(self) -> dict:
        return {"configs": {"pdd": options(self.config)},
                "data": {"n": self.data.n, "ndim": self.spatial_dims, "mean": self.data.mean, "std": self.data.std,
                         "dt": self.data.dt, "variable": self.data.variable, "source": self.data.source,
                         "power": mode_power(self.data.fields, self.spatial_dims)}}

    def sequences(self, batch: int, generator: torch.Generator) -> Tensor:
        """(batch, frames, *grid): consecutive frames from random trajectories and start times."""
        traj, length = self.fields.shape[:2]
        i = torch.randint(traj, (batch,), generator=generator, device=self.device)
        t0 = torch.randint(length - self.frames + 1, (batch,), generator=generator, device=self.device)
        return self.fields[i[:, None], t0[:, None] + torch.arange(self.frames, device=self.device)[None]]

    def loss(self, net: torch.nn.Module, batch: int, generator: torch.Generator) -> Tensor:
        lam = torch.rand(batch, generator=generator, device=self.device)
        lam = lam**2 if self.config.lam_sampling == "quadratic" else lam
        x = forward_sample(self.sequences(batch, generator), lam, self.process, generator)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            prediction = increments(net, x, lam, self.window)
        residual = (x[:, 1:] - x[:, :-1]) - prediction
        variance = mean_variance(self.process, lam, self.data.n).float()
        return torch.mean(residual.pow(2).flatten(1) / variance[:, None])


@dataclass
class PDD:
    """A trained predictor with its forward process, in normalized units (``normalize``/``denormalize`` map)."""

    net: torch.nn.Module
    process: OUProcess
    window: int
    frames: int
    std_ratio: float
    mean: float
    std: float
    dt: float
    power: Tensor  # P_k of the normalized data, on the full FFT grid
    variable: str = "vorticity"
    nfe: int = 0

    @property
    def n(self) -> int:
        return self.power.shape[-1]

    @property
    def ndim(self) -> int:
        return self.process.ndim

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def normalize(self, x: Tensor) -> Tensor:
        return (x.float() - self.mean) / self.std

    def denormalize(self, x: Tensor) -> Tensor:
        return x * self.std + self.mean

    def path_variance(self, lam: float, kind: str) -> Tensor:
        """``V_k(λ)``: ``r² Q_k`` (spectral) or ``r² mean_k Q_k`` (scalar) at max(λ, 10⁻³), on the grid, float32."""
        q = self.process.variance(max(lam, LAM_FLOOR), self.n, self.device)
        q = q if kind == "spectral" else torch.full_like(q, float(q.mean()))
        return (self.std_ratio**2 * q).float()

    def marginal_variance(self, lam: float) -> Tensor:
        """Per-mode variance of one frame at λ for Gaussian data of power P_k: ``e^{2μλ} P_k + Q_k(λ)``, float64."""
        damping = self.process.damping(lam, self.n, self.device)
        variance = damping**2 * self.power.to(self.device) + self.process.variance(lam, self.n, self.device)
        return variance.clamp(min=1e-12)

    def predict(self, x: Tensor, lam: float) -> Tensor:
        """F_θ for every transition of x (batch, T, *grid), normalized units."""
        self.nfe += 1
        return increments(self.net, x, torch.full((x.shape[0],), float(lam), device=x.device), self.window)

    def action(self, x: Tensor, lam: float, kind: str = "spectral") -> Tensor:
        """``S(x; λ)`` per sequence: x (batch, T, *grid) → (batch,)."""
        residual = ortho_fft((x[:, 1:] - x[:, :-1]) - self.predict(x, lam), self.ndim)
        first = ortho_fft(x[:, 0], self.ndim)
        transitions = (residual.abs() ** 2 / self.path_variance(lam, kind)).flatten(1).sum(1)
        return 0.5 * (transitions + (first.abs() ** 2 / self.marginal_variance(lam).float()).flatten(1).sum(1))

    def score(self, x: Tensor, lam: float, kind: str = "spectral") -> Tensor:
        """The path score ``−∂S/∂x`` (autograd), same shape as x."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.action(x, lam, kind).sum(), x)
        return -grad

    def lambda_grid(self, lam0: float, steps: int, kind: str) -> list[float]:
        """``steps + 1`` values from λ0 down to 0: uniform (the paper's), or geometric from λ0 to ``0.1/|μ|max``
        (each mode is decided near λ ≈ 1/|μ_k|: equal steps per octave of scale) and then 0."""
        lam_min = 0.1 / float(-self.process.rates(self.n).min())
        if kind == "uniform" or steps < 2 or lam0 <= lam_min:
            return [lam0 * (1 - i / steps) for i in range(steps + 1)]
        ratio = lam_min / lam0
        return [lam0 * ratio ** (i / (steps - 1)) for i in range(steps)] + [0.0]

    def reverse(self, x: Tensor, sampler: PDDSamplerConfig, generator: torch.Generator | None = None,
                callback: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None) -> Tensor:
        """Integrate normalized sequences x (batch, T, *grid) from λ = ``sampler.lam`` to 0 (module doc)."""
        lam0 = check_lambda(sampler.lam)
        if lam0 == 0:
            return x.clone()
        grid = self.lambda_grid(lam0, sampler.steps, sampler.grid)
        for i, (lam, lam_next) in enumerate(zip(grid[:-1], grid[1:])):
            growth, kick, spread, gain = self._step_factors(lam, lam_next, sampler)
            s = self.score(x, lam, sampler.variance)
            with torch.no_grad():
                xh = ortho_fft(x, self.ndim)
                xh = growth * xh + kick * (ortho_fft(s, self.ndim) + gain * xh)
                if spread is not None:
                    xh = xh + spread * ortho_fft(torch.randn(x.shape, generator=generator, device=x.device), self.ndim)
                x = ortho_ifft(xh, self.ndim)
            if callback is not None:
                callback({"kind": "progress", "step": i + 1, "steps": sampler.steps, "lam": lam_next, "state": x})
            if should_stop is not None and should_stop():
                raise EngineError(f"stopped at λ = {lam_next:.4g}")
        return x

    def _step_factors(self, lam: float, lam_next: float, sampler: PDDSamplerConfig):
        """Per-mode (growth, kick, noise std or None, c) of one step λ → λ' = λ − h: x̂' = growth x̂ + kick (ŝ + c x̂) + std ε̂.

        etd1: growth e^{−μh}, kick h w b² φ₁(−μh), c = 0, std b√h (none on the last step).
        gaussian: the exact step for Gaussian frames of variance v(λ) = e^{2μλ}P + Q(λ), whose score is −x̂/v
        (c = 1/v): growth e^{μh} v'/v and std sqrt(v' Q(h)/v) (the posterior; sde), or sqrt(v'/v) (ode); the rest
        of the score gets the exponential kick h w b² φ₁(log growth).
        """
        h, b2 = lam - lam_next, self.process.b2
        weight = 1.0 if sampler.method == "sde" else 0.5
        if sampler.integrator == "etd1":
            z = -self.process.rates(self.n, self.device) * h
            spread = math.sqrt(b2 * h) if sampler.method == "sde" and lam_next > 0 else None
            return torch.exp(z).float(), (h * weight * b2 * phi1(z)).float(), spread, 0.0
        v, v_next = self.marginal_variance(lam), self.marginal_variance(lam_next)
        if sampler.method == "sde":
            growth = self.process.damping(h, self.n, self.device) * v_next / v
            spread = (v_next * self.process.variance(h, self.n, self.device) / v).sqrt().float()
        else:
            growth, spread = (v_next / v).sqrt(), None
        kick = h * weight * b2 * phi1(torch.log(growth))
        return growth.float(), kick.float(), spread, (1 / v).float()

    def coarse_grain(self, x: Tensor, lam: float, generator: torch.Generator | None = None) -> Tensor:
        """Normalized sequences (batch, T, *grid) at λ: the forward process on every frame."""
        return forward_sample(x, torch.full((x.shape[0],), float(check_lambda(lam)), device=x.device), self.process,
                              generator)

    def noise_at(self, lam: float, shape: tuple, generator: torch.Generator | None = None) -> Tensor:
        """Gaussian sequences with the per-mode variance ``Q_k(λ)`` (the start of generation at λ = 1)."""
        white = torch.randn(shape, generator=generator, device=self.device)
        return ortho_ifft(self.process.variance(lam, self.n, self.device).sqrt().float() * ortho_fft(white, self.ndim), self.ndim)

    def stepper(self, lam: float, kind: str = "spectral", noise: bool = True,
                generator: torch.Generator | None = None) -> "Stepper":
        return Stepper(self, check_lambda(lam), kind, noise, generator)


class Stepper:
    """Simulation at fixed λ as a one-step map in physical units: ``x_{n+1} = x_n + F_θ(window; λ) + η_n``,
    η with per-mode variance V_k(λ); it remembers the last w − 1 states it was given (zeros before the first)."""

    def __init__(self, model: PDD, lam: float, kind: str, noise: bool, generator: torch.Generator | None):
        self.model, self.lam, self.noise, self.generator = model, lam, noise, generator
        self.spread = model.path_variance(lam, kind).sqrt()
        self.history: list[Tensor] = []

    @torch.no_grad()
    def __call__(self, u: Tensor) -> Tensor:
        model = self.model
        x = model.normalize(u)
        self.history = (self.history + [x])[-model.window:]
        window = torch.stack([torch.zeros_like(x)] * (model.window - len(self.history)) + self.history, 1)
        model.nfe += 1
        x_next = x + model.net(window, torch.full((x.shape[0],), self.lam, device=x.device))[:, 0].float()
        if self.noise:
            white = torch.randn(x.shape, generator=self.generator, device=x.device)
            x_next = x_next + ortho_ifft(self.spread * ortho_fft(white, model.ndim), model.ndim)
        return model.denormalize(x_next)


def simulate(model: PDD, initial: Tensor, lam: float, steps: int, kind: str = "spectral", noise: bool = True,
             generator: torch.Generator | None = None) -> Tensor:
    """``steps`` fixed-λ steps from initial (batch, *grid) physical units: (batch, steps + 1, *grid)."""
    stepper, states = model.stepper(lam, kind, noise, generator), [initial.float()]
    for _ in range(steps):
        states.append(stepper(states[-1]))
    return torch.stack(states, 1)


def load_pdd(path: str | Path, device: torch.device | str = "cpu") -> PDD:
    """The predictor of a ``train --task pdd`` checkpoint (EMA weights) with its forward process and data statistics."""
    state = load_checkpoint(path, device)
    if state.get("task") != "pdd":
        raise EngineError(f"{path} holds a '{state.get('task', 'generate')}' model, not a PDD predictor; "
                          "train one with --task pdd")
    configs, data = state["configs"], state["data"]
    config = configs["pdd"]
    net = build_unet(configs["model"]["size"], in_channels=config["window"], ndim=data["ndim"]).to(device)
    net.load_state_dict(state["ema_state"])
    process = OUProcess(config["a"], config["b2"], data["ndim"])
    return PDD(net.eval(), process, config["window"], config["frames"], config["std_ratio"], data["mean"], data["std"],
               data["dt"], data["power"].to(device), data["variable"])


def pick_sequences(fields: Tensor, count: int, frames: int) -> Tensor:
    """``count`` non-overlapping runs of ``frames`` frames, round-robin over trajectories: (count, frames, *grid)."""
    trajectories, length = fields.shape[:2]
    per_trajectory = length // frames
    if count > trajectories * per_trajectory:
        raise EngineError(f"{count} sequences of {frames} frames asked for; the data holds {trajectories * per_trajectory} "
                          f"({trajectories} trajectories × {length} snapshots)")
    return torch.stack([fields[i % trajectories, (i // trajectories) * frames:(i // trajectories + 1) * frames]
                        for i in range(count)])


def superres_dataset(model: PDD, coarse: Tensor, output: Tensor, truth: Tensor, sampler: PDDSamplerConfig,
                     summary: dict, **attrs) -> xr.Dataset:
    """``{var}_coarse``, ``{var}`` (super-resolved), ``{var}_truth`` over (sequence, frame, grid) and their spectra."""
    from engine.data.store import provenance

    grid = ("y", "x") if model.ndim == 2 else ("k",)
    dims = ("sequence", "frame", *grid)
    coord = np.arange(model.n) * (2 * math.pi / model.n) if model.ndim == 2 else np.arange(model.n)
    name = model.variable
    spectra = np.stack([summary["spectra"][key] for key in ("input", "output", "truth")])
    return xr.Dataset(
        {f"{name}_coarse": (dims, coarse.numpy(), {"long_name": f"{name} coarse-grained at λ = {sampler.lam}"}),
         name: (dims, output.numpy(), {"long_name": f"{name} super-resolved by reverse-λ integration"}),
         f"{name}_truth": (dims, truth.numpy(), {"long_name": f"{name} of the fine simulation"}),
         "spectrum": (("field", "wavenumber"), spectra, {"long_name": "power spectrum, mean over sequences and frames"})},
        coords={"sequence": np.arange(coarse.shape[0]), "frame": ("frame", np.arange(coarse.shape[1]) * model.dt,
                                                                  {"units": "model time"}),
                **{g: coord for g in grid}, "field": ["input", "output", "truth"],
                "wavenumber": np.arange(model.n // 2 + 1), "lam": sampler.lam},
        attrs=provenance("engine.pdd", **options(sampler), seconds=summary["seconds"], nfe=summary["nfe"], **attrs))


def superres_inputs(model: PDD, data: Trajectories, sequences: int, sampler: PDDSamplerConfig,
                    from_noise: bool = False) -> tuple[Tensor, Tensor, torch.Generator]:
    """Fine truth sequences and their coarse input at ``sampler.lam`` (or noise), normalized by the model, and the
    seeded generator that continues into the reverse integration (the dashboard previews the same input)."""
    truth = model.normalize(pick_sequences(data.denormalize(data.fields), sequences, model.frames)).to(model.device)
    generator = torch.Generator(device=model.device).manual_seed(sampler.seed)
    coarse = model.noise_at(sampler.lam, truth.shape, generator) if from_noise else model.coarse_grain(truth, sampler.lam, generator)
    return truth, coarse, generator


def run_superres(store, checkpoint: str, data: str, sampler: PDDSamplerConfig, sequences: int = 1,
                 variable: str | None = None, out: str | None = None, from_noise: bool = False, device: str = "auto",
                 callback: Callable[[dict], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> tuple[dict, xr.Dataset]:
    """Super-resolve ``sequences`` runs of the test data coarse-grained at ``sampler.lam`` (or generate from noise
    at that λ) with the PDD checkpoint; returns a JSON-ready summary (per-band mean |log S/S_truth| of the input
    and the output spectra, seconds, NFE) and the dataset (written to ``out`` when given)."""
    import time

    from engine.data.store import write_dataset
    from engine.diagnostics import band_log_spectral_error, spectra
    from engine.training import resolve_device

    device = resolve_device(device)
    model = load_pdd(store.path(checkpoint), device)
    data_set = load_sequences(store.path(data), variable)
    if data_set.n != model.n or data_set.fields.dim() - 2 != model.ndim:
        raise EngineError(f"{checkpoint} was trained on {model.n}-point {model.ndim}-D fields; {data} has "
                          f"{data_set.n}-point {data_set.fields.dim() - 2}-D fields")
    check_time_step(model.dt, data_set, checkpoint, store)
    truth, coarse, generator = superres_inputs(model, data_set, sequences, sampler, from_noise)
    physical = callback and (lambda event: callback({**event, "state": model.denormalize(event["state"])}))
    start = time.perf_counter()
    output = model.reverse(coarse, sampler, generator, physical, should_stop)
    seconds = time.perf_counter() - start
    if not torch.isfinite(output).all():
        raise EngineError(f"reverse-λ integration diverged (NaN/inf) with {sampler.steps} steps; use more λ steps "
                          "or the gaussian integrator")
    fields = {key: model.denormalize(value).cpu() for key, value in (("input", coarse), ("output", output), ("truth", truth))}
    power = {key: spectra(value, model.ndim).reshape(-1, model.n // 2 + 1).mean(0) for key, value in fields.items()}
    summary = {"lam": sampler.lam, "steps": sampler.steps, "sequences": sequences, "frames": model.frames,
               "seconds": round(seconds, 3), "nfe": model.nfe, "from_noise": from_noise,
               "input_error": band_log_spectral_error(power["input"], power["truth"]),
               "output_error": band_log_spectral_error(power["output"], power["truth"]),
               "spectra": {key: value.numpy() for key, value in power.items()}, "out": out}
    dataset = superres_dataset(model, fields["input"], fields["output"], fields["truth"], sampler, summary,
                               checkpoint=str(checkpoint), data=str(data), from_noise=int(from_noise))
    if out:
        write_dataset(dataset, store.path(out))
    return summary, dataset
