"""Generate fields: a drift (exact Gaussian or a trained checkpoint) + noise + schedule + sampler.

The one place configs become a sampling ``Setup`` and samples with their spectral errors (the ``sample``
pipeline writes them). Everything here works in the data's physical units; networks see normalized fields
through ``NetworkDrift``. docs/science.md has the math, docs/architecture.md the layers.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import cached_property

import torch

from engine.checkpoints import load_checkpoint
from engine.config import ModelConfig, NoiseConfig, SamplerConfig, ScheduleConfig, options
from engine.data.fields import FieldData, StateFieldData
from engine.devices import accelerate
from engine.errors import EngineError
from engine.interpolants import CrossSpectralModel, GaussianModel, ScheduleTransfer, ScoreFromDrift
from engine.models import build_unet
from engine.noise import colour, cross_colouring, cross_noise_spectra, matched_spectrum, noise_generator, noise_spectrum
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
from engine.spectral import (
    apply_mode_matrix,
    coherence_error,
    isotropic_cross_spectrum,
    radial_spectrum,
    shell_sum,
    spectral_errors,
)


def build_schedule(config: ScheduleConfig, n: int, data_power: torch.Tensor, noise_power: torch.Tensor,
                   fields: int = 1):
    """The schedule of a config for states of ``fields`` n×n fields (d = fields · n²); the designed schedule's r
    comes from the spectra (n, n) unless set (for several fields: their mean over the fields)."""
    r = config.r if config.r is not None else spectral_ratio_at_highest_wavenumber(data_power, noise_power)
    return make_schedule(config.kind, dimension=fields * n * n, r=r, sigma_max=config.sigma_max,
                         beta_form=config.beta_form, gamma_sigma=config.gamma_sigma, dilation_k=config.dilation_k)


class NetworkDrift(torch.nn.Module):
    """A trained U-Net as a drift in physical units: ``b(t, x) = scale · b_θ(t, x / scale)``; ``net`` as the sampler
    runs it (``engine.devices.accelerate``: precision, compile). One field: x (batch, n, n) and a float ``scale``;
    states of C fields: x (batch, C, n, n) and one scale per field (C,)."""

    def __init__(self, net: torch.nn.Module, scale: float | torch.Tensor):
        super().__init__()
        self.net, self.fields = net, isinstance(scale, torch.Tensor)
        self.scale = scale.reshape(-1, 1, 1) if self.fields else scale

    @torch.no_grad()
    def forward(self, t, x: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float32, device=x.device).expand(x.shape[0])
        if self.fields:
            scale = self.scale.to(x.device, x.dtype)
            return self.net(x / scale, t).to(x.dtype) * scale
        return self.net((x / self.scale)[:, None], t)[:, 0].to(x.dtype) * self.scale


@dataclass
class Setup:
    """Everything a sampler needs, in physical units. States of several fields also carry the noise's cross-spectral
    matrix (n, n/2 + 1, C, C), the data's shell cross-spectra (C, C, N/2 + 1) and the fields' names."""

    drift: object
    score: object  # (t, x, b) -> C ∇log p_t, or None where the drift gives none
    schedule: object
    noise_power: torch.Tensor  # (n, n) modal variance; (C, n, n) for states of C fields: each field's
    data_power: torch.Tensor
    description: dict = field(default_factory=dict)
    noise_cross: torch.Tensor | None = None
    cross_shells: torch.Tensor | None = None
    variables: tuple[str, ...] = ()

    @property
    def state_shape(self) -> tuple[int, ...]:
        """One state's shape: (n, n), or (C, n, n)."""
        return tuple(self.data_power.shape)

    @cached_property
    def noise_colouring(self) -> torch.Tensor | None:
        """The noise's colouring across fields (``engine.noise.cross_colouring``), once; None for one field."""
        return None if self.noise_cross is None else cross_colouring(self.noise_cross)

    def colour(self, white: torch.Tensor) -> torch.Tensor:
        """Unit white noise (count, *state_shape) coloured to the noise's covariance (across fields if several)."""
        if self.noise_colouring is None:
            return colour(white, self.noise_power.to(white.device))
        return apply_mode_matrix(white, self.noise_colouring.to(white.device))


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


def state_spectra(cross_shells: torch.Tensor, n: int, noise: NoiseConfig) -> dict[str, torch.Tensor]:
    """Noise and data spectra of states of C fields from the data's shell cross-spectra (C, C, N_s): each field's
    modal variance (C, n, n), the noise's cross-spectral matrix (n, n/2 + 1, C, C) and the data's shells."""
    channels = cross_shells.shape[0]
    return {"noise_power": torch.stack([noise_spectrum(noise.kind, n, cross_shells[c, c], noise.exponent)
                                        for c in range(channels)]),
            "data_power": torch.stack([matched_spectrum(cross_shells[c, c], n) for c in range(channels)]),
            "noise_cross": cross_noise_spectra(noise.kind, n, cross_shells, noise.exponent),
            "cross_shells": cross_shells}


def state_schedule(config: ScheduleConfig, spectra: dict[str, torch.Tensor]):
    """``build_schedule`` for states of C fields: d = C n², the designed schedule's r from the fields' mean spectra."""
    channels, n = spectra["data_power"].shape[:2]
    return build_schedule(config, n, spectra["data_power"].mean(0), spectra["noise_power"].mean(0), channels)


def state_analytic_setup(data: StateFieldData, noise: NoiseConfig, schedule: ScheduleConfig) -> Setup:
    """The exact drift for Gaussian states of C fields with the data's cross-spectra (``CrossSpectralModel``)."""
    spectra = state_spectra(data.cross_spectrum, data.n, noise)
    sched = state_schedule(schedule, spectra)
    model = CrossSpectralModel(spectra["noise_cross"], cross_noise_spectra("matched", data.n, data.cross_spectrum),
                               sched)
    score = ScoreFromDrift(model, sched) if float(sched(0.5).gamma) == 0 else None
    return Setup(model, score, sched, description={"model": "analytic", "noise": options(noise),
                                                   "schedule": options(schedule)},
                 variables=data.variables, **spectra)


def same_noise(a: dict, b: dict) -> bool:
    """Two noise configs give the same source distribution (the exponent matters for power-law noise only)."""
    return a["kind"] == b["kind"] and (a["kind"] != "powerlaw" or a["exponent"] == b["exponent"])


def checkpoint_setup(path: str, data: FieldData | StateFieldData, noise: NoiseConfig, schedule: ScheduleConfig,
                     device: torch.device, precision: str = "auto", compile: bool = False,
                     name: str | None = None) -> Setup:
    """A trained drift, its network run at ``precision`` (compiled if asked); sampling with another schedule than
    the training one uses ``ScheduleTransfer``. ``name`` (its name in the data folder) is what messages and the
    recipe call the checkpoint, never the machine's path. A generator of C fields needs ``data`` of those fields."""
    name = name or str(path)
    state = load_checkpoint(path, device)
    if state.get("task", "generate") != "generate":
        raise EngineError(f"{name} holds a '{state['task']}' model, an emulator; use it with `rollout`, not `sample`")
    trained, recorded = state["configs"], state["data"]
    check_trained_fields(recorded, data, name)
    if not same_noise(trained["noise"], options(noise)):
        raise EngineError(f"{name} was trained with noise {trained['noise']}; sample with the same noise "
                          "(the network learned that source distribution)")
    fields = len(recorded.get("variables", [None]))
    net = build_unet(trained["model"]["size"], fields, fields).to(device)
    net.load_state_dict(state["ema_state"])
    net.eval()
    if isinstance(data, StateFieldData):
        spectra = state_spectra(data.cross_spectrum, data.n, noise)
        trained_schedule, target = (state_schedule(config, spectra)
                                    for config in (ScheduleConfig(**trained["schedule"]), schedule))
        scale = torch.as_tensor(recorded["scales"], dtype=torch.float32)
    else:
        noise_power, data_power = _spectra(data, noise)
        spectra = {"noise_power": noise_power, "data_power": data_power}
        trained_schedule, target = (build_schedule(config, data.n, data_power, noise_power)
                                    for config in (ScheduleConfig(**trained["schedule"]), schedule))
        scale = recorded["scale"]
    drift = NetworkDrift(accelerate(net, device, precision, compile), scale)
    if trained["schedule"] != options(schedule):
        if float(trained_schedule(0.5).gamma) != 0 or float(target(0.5).gamma) != 0:
            raise EngineError("switching schedules at sampling time needs γ = 0 in both schedules")
        drift = ScheduleTransfer(drift, trained_schedule, target)
    gamma_free = float(target(0.5).gamma) == 0
    return Setup(drift, ScoreFromDrift(drift, target) if gamma_free else None, target,
                 description={"model": "checkpoint", "checkpoint": name, "trained_schedule": trained["schedule"],
                              "noise": options(noise), "schedule": options(schedule)},
                 variables=tuple(recorded.get("variables", ())), **spectra)


def check_trained_fields(recorded: dict, data: FieldData | StateFieldData, name: str) -> None:
    """A generator samples states of the grid and the fields it was trained on (one field: any one, as before)."""
    if recorded["n"] != data.n:
        raise EngineError(f"{name} was trained on {recorded['n']}² fields, the data is {data.n}²")
    trained = recorded.get("variables")
    given = list(data.variables) if isinstance(data, StateFieldData) else None
    if trained is not None and given != list(trained):
        raise EngineError(f"{name} was trained on states of {', '.join(trained)}; the data gives "
                          f"{', '.join(given or [data.variable])}")
    if trained is None and given is not None:
        raise EngineError(f"{name} was trained on one field; sample it on one, not on {', '.join(given)}")


def make_setup(model: ModelConfig, data: FieldData | StateFieldData, noise: NoiseConfig, schedule: ScheduleConfig,
               checkpoint: str | None = None, device: torch.device | None = None,
               sampler: SamplerConfig | None = None, name: str | None = None) -> Setup:
    """The analytic drift, or a checkpoint's (run at ``sampler``'s precision, compiled if it asks; called ``name``
    in messages and the recipe)."""
    if model.kind == "analytic":
        if isinstance(data, StateFieldData):
            return state_analytic_setup(data, noise, schedule)
        return analytic_setup(data, noise, schedule)
    if checkpoint is None:
        raise EngineError("a trained model needs a checkpoint (or choose the analytic model)")
    sampler = sampler or SamplerConfig()
    return checkpoint_setup(checkpoint, data, noise, schedule, device or torch.device("cpu"), sampler.precision,
                            sampler.compile, name=name)


GRID_DILATION_K = 5.0  # paper 003's k for the dilated time grid, with d = n² pixels


def time_grid(sampler: SamplerConfig, dimension: int) -> torch.Tensor:
    """The sampler's time grid: uniform, or paper 003's dilated grid for states of ``dimension`` values."""
    if sampler.grid == "dilated":
        return dilated_grid(sampler.steps, GRID_DILATION_K, dimension)
    return uniform_grid(sampler.steps)


@dataclass
class Generated:
    samples: torch.Tensor  # (count, n, n) or (count, C, n, n), physical units
    nfe: int
    seconds: float
    errors: dict


def run_sampler(setup: Setup, sampler: SamplerConfig, count: int, device: torch.device,
                callback=None) -> tuple[torch.Tensor, int, float]:
    """Draw ``count`` samples; returns (samples, NFE, seconds). The noise comes from ``sampler.seed``."""
    shape = setup.state_shape
    generator = noise_generator(sampler.seed, device)
    ts = time_grid(sampler, math.prod(shape))
    c0 = setup.schedule(0.0)
    x = float(c0.alpha) * setup.colour(torch.randn(count, *shape, generator=generator, device=device))
    drift = CountedDrift(setup.drift)
    start = time.perf_counter()
    if sampler.method == "sde":
        if setup.score is None:
            raise EngineError("SDE sampling needs a score: use a schedule with γ = 0 for a trained drift")
        eps = diffusion(sampler.eps_shape, sampler.eps, setup.schedule)
        x = sample_euler_maruyama(drift, setup.score, x, ts, eps, setup.colour, generator, callback)
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
    return Generated(samples, nfe, seconds, sample_errors(samples, setup))


def sample_errors(samples: torch.Tensor, setup: Setup) -> dict[str, float]:
    """Spectral errors of samples against the data's spectrum (``spectral_errors``); for states of several fields
    each field's as ``<field>_<error>``, their mean under the plain names, and ``coherence_error`` (mean |ρ_gen −
    ρ_data| over field pairs and shells)."""
    n = samples.shape[-1]
    if not setup.variables:
        return spectral_errors(radial_spectrum(samples), shell_sum(setup.data_power), n)
    per_field = [spectral_errors(radial_spectrum(samples[:, c]), shell_sum(setup.data_power[c]), n)
                 for c in range(len(setup.variables))]
    errors = {key: sum(e[key] for e in per_field) / len(per_field) for key in per_field[0]}
    errors["coherence_error"] = coherence_error(isotropic_cross_spectrum(samples), setup.cross_shells)
    for name, field_errors in zip(setup.variables, per_field):
        errors.update({f"{name}_{key}": value for key, value in field_errors.items()})
    return errors



