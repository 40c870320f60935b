"""Generate fields: a drift (exact Gaussian or a trained checkpoint) + noise + schedule + sampler.

The one place configs become a sampling ``Setup`` and samples with their spectral errors (the ``sample``
pipeline writes them). Everything here works in the data's physical units; networks see normalized fields
through ``NetworkDrift``. docs/science.md has the math, docs/architecture.md the layers.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from engine.checkpoints import load_checkpoint
from engine.config import ModelConfig, NoiseConfig, SamplerConfig, ScheduleConfig, options
from engine.data.fields import FieldData
from engine.devices import accelerate
from engine.errors import EngineError
from engine.interpolants import GaussianModel, ScheduleTransfer, ScoreFromDrift
from engine.models import build_unet
from engine.noise import colour, matched_spectrum, noise_generator, noise_spectrum
from engine.samplers import (
    CountedDrift,
    diffusion,
    dilated_grid,
    sample_euler,
    sample_euler_maruyama,
    sample_heun,
    sample_rk4,
    uniform_grid,
)
from engine.schedules import make_schedule, spectral_ratio_at_highest_wavenumber
from engine.spectral import radial_spectrum, shell_sum, spectral_errors


def build_schedule(config: ScheduleConfig, n: int, data_power: torch.Tensor, noise_power: torch.Tensor):
    """The schedule of a config on an n×n grid; the designed schedule's r comes from the spectra unless set."""
    r = config.r if config.r is not None else spectral_ratio_at_highest_wavenumber(data_power, noise_power)
    return make_schedule(config.kind, dimension=n * n, r=r, sigma_max=config.sigma_max,
                         beta_form=config.beta_form, gamma_sigma=config.gamma_sigma, dilation_k=config.dilation_k)


class NetworkDrift(torch.nn.Module):
    """A trained U-Net as a drift in physical units: ``b(t, x) = scale · b_θ(t, x / scale)``; ``net`` as the sampler
    runs it (``engine.devices.accelerate``: precision, compile)."""

    def __init__(self, net: torch.nn.Module, scale: float):
        super().__init__()
        self.net, self.scale = net, scale

    @torch.no_grad()
    def forward(self, t, x: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float32, device=x.device).expand(x.shape[0])
        return self.net((x / self.scale)[:, None], t)[:, 0].to(x.dtype) * self.scale


@dataclass
class Setup:
    """Everything a sampler needs, in physical units."""

    drift: object
    score: object  # (t, x, b) -> C ∇log p_t, or None where the drift gives none
    schedule: object
    noise_power: torch.Tensor
    data_power: torch.Tensor
    description: dict = field(default_factory=dict)


def _spectra(data: FieldData, noise: NoiseConfig) -> tuple[torch.Tensor, torch.Tensor]:
    data_power = matched_spectrum(data.spectrum, data.n)
    return noise_spectrum(noise.kind, data.n, data.spectrum, noise.exponent), data_power


def analytic_setup(data: FieldData, noise: NoiseConfig, schedule: ScheduleConfig) -> Setup:
    """The exact drift for Gaussian data with the dataset's stored spectrum."""
    noise_power, data_power = _spectra(data, noise)
    sched = build_schedule(schedule, data.n, data_power, noise_power)
    model = GaussianModel(noise_power, data_power, sched)
    return Setup(model, model.score, sched, noise_power, data_power,
                 {"model": "analytic", "noise": options(noise), "schedule": options(schedule)})


def same_noise(a: dict, b: dict) -> bool:
    """Two noise configs give the same source distribution (the exponent matters for power-law noise only)."""
    return a["kind"] == b["kind"] and (a["kind"] != "powerlaw" or a["exponent"] == b["exponent"])


def checkpoint_setup(path: str, data: FieldData, noise: NoiseConfig, schedule: ScheduleConfig,
                     device: torch.device, precision: str = "auto", compile: bool = False,
                     name: str | None = None) -> Setup:
    """A trained drift, its network run at ``precision`` (compiled if asked); sampling with another schedule than
    the training one uses ``ScheduleTransfer``. ``name`` (its name in the data folder) is what messages and the
    recipe call the checkpoint, never the machine's path."""
    name = name or str(path)
    state = load_checkpoint(path, device)
    if state.get("task", "generate") != "generate":
        raise EngineError(f"{name} holds a '{state['task']}' model, an emulator; use it with `rollout`, not `sample`")
    trained = state["configs"]
    if state["data"]["n"] != data.n:
        raise EngineError(f"{name} was trained on {state['data']['n']}² fields, the data is {data.n}²")
    if not same_noise(trained["noise"], options(noise)):
        raise EngineError(f"{name} was trained with noise {trained['noise']}; sample with the same noise "
                          "(the network learned that source distribution)")
    net = build_unet(trained["model"]["size"]).to(device)
    net.load_state_dict(state["ema_state"])
    net.eval()
    noise_power, data_power = _spectra(data, noise)
    trained_schedule = build_schedule(ScheduleConfig(**trained["schedule"]), data.n, data_power, noise_power)
    target = build_schedule(schedule, data.n, data_power, noise_power)
    drift = NetworkDrift(accelerate(net, device, precision, compile), state["data"]["scale"])
    if trained["schedule"] != options(schedule):
        if float(trained_schedule(0.5).gamma) != 0 or float(target(0.5).gamma) != 0:
            raise EngineError("switching schedules at sampling time needs γ = 0 in both schedules")
        drift = ScheduleTransfer(drift, trained_schedule, target)
    gamma_free = float(target(0.5).gamma) == 0
    return Setup(drift, ScoreFromDrift(drift, target) if gamma_free else None, target, noise_power, data_power,
                 {"model": "checkpoint", "checkpoint": name, "trained_schedule": trained["schedule"],
                  "noise": options(noise), "schedule": options(schedule)})


def make_setup(model: ModelConfig, data: FieldData, noise: NoiseConfig, schedule: ScheduleConfig,
               checkpoint: str | None = None, device: torch.device | None = None,
               sampler: SamplerConfig | None = None, name: str | None = None) -> Setup:
    """The analytic drift, or a checkpoint's (run at ``sampler``'s precision, compiled if it asks; called ``name``
    in messages and the recipe)."""
    if model.kind == "analytic":
        return analytic_setup(data, noise, schedule)
    if checkpoint is None:
        raise EngineError("a trained model needs a checkpoint (or choose the analytic model)")
    sampler = sampler or SamplerConfig()
    return checkpoint_setup(checkpoint, data, noise, schedule, device or torch.device("cpu"), sampler.precision,
                            sampler.compile, name=name)


GRID_DILATION_K = 5.0  # paper 003's k for the dilated time grid, with d = n² pixels


def time_grid(sampler: SamplerConfig, n: int) -> torch.Tensor:
    if sampler.grid == "dilated":
        return dilated_grid(sampler.steps, GRID_DILATION_K, n * n)
    return uniform_grid(sampler.steps)


@dataclass
class Generated:
    samples: torch.Tensor  # (count, n, n), physical units
    nfe: int
    seconds: float
    errors: dict


def run_sampler(setup: Setup, sampler: SamplerConfig, count: int, device: torch.device,
                callback=None) -> tuple[torch.Tensor, int, float]:
    """Draw ``count`` samples; returns (samples, NFE, seconds). The noise comes from ``sampler.seed``."""
    n = setup.data_power.shape[-1]
    generator = noise_generator(sampler.seed, device)
    noise_power = setup.noise_power.to(device)
    ts = time_grid(sampler, n)
    c0 = setup.schedule(0.0)
    x = float(c0.alpha) * colour(torch.randn(count, n, n, generator=generator, device=device), noise_power)
    drift = CountedDrift(setup.drift)
    start = time.perf_counter()
    if sampler.method == "sde":
        if setup.score is None:
            raise EngineError("SDE sampling needs a score: use a schedule with γ = 0 for a trained drift")
        eps = diffusion(sampler.eps_shape, sampler.eps, setup.schedule)
        x = sample_euler_maruyama(drift, setup.score, x, ts, eps, noise_power, generator, callback)
    elif sampler.integrator == "heun":
        x = sample_heun(drift, x, ts, callback)
    elif sampler.integrator == "rk4":
        x = sample_rk4(drift, x, ts, callback)
    else:
        x = sample_euler(drift, x, ts, callback)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return x, drift.nfe, time.perf_counter() - start


def generate_samples(setup: Setup, sampler: SamplerConfig, count: int, device: torch.device | None = None,
                     callback=None) -> Generated:
    """Samples plus their spectral errors against the data's spectrum (mean |log S_gen/S_data|, bands)."""
    device = device or torch.device("cpu")
    samples, nfe, seconds = run_sampler(setup, sampler, count, device, callback)
    samples = samples.float().cpu()
    if not torch.isfinite(samples).all():
        raise EngineError("the sampler produced NaN or infinite values: use more steps, a smaller ε, "
                          "or noise that is not smoother than the data")
    n = samples.shape[-1]
    errors = spectral_errors(radial_spectrum(samples), shell_sum(setup.data_power), n)
    return Generated(samples, nfe, seconds, errors)
