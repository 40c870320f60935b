"""``sample``: generate fields with the exact Gaussian drift or a trained one, score their spectra, write them.

The setup (drift, score, schedule, noise) and the integrators are ``engine.generation`` and
``engine.samplers``; this module adds loading, the xarray schema and the file. See docs/architecture.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import torch
import xarray as xr

from engine.checkpoints import load_checkpoint
from engine.config import ModelConfig, NoiseConfig, SamplerConfig, ScheduleConfig, options
from engine.data.fields import FieldData, StateFieldData, generation_fields, load_fields
from engine.data.io import write_dataset
from engine.data.store import DataStore, provenance
from engine.devices import DEVICE_CHOICES, check_memory, resolve_device
from engine.errors import EngineError
from engine.files import check_writable
from engine.generation import Generated, Setup, generate_samples, make_setup
from engine.pipelines.request import MODEL_FLAGS, NOISE_FLAGS, OVERWRITE, SCHEDULE_FLAGS, Request, configs, option
from engine.spectral import radial_spectrum

SAMPLER_FLAGS = {"method": "sampler", "precision": "sampler-precision", "compile": "sampler-compile"}
SAMPLE_BYTES = 64.0  # per grid value while sampling: float64 state, noise, drift and the sampler's temporaries


@dataclass
class SampleResult:
    """The samples with their NFE, time and errors, the setup that drew them, and a JSON-ready summary."""

    generated: Generated
    setup: Setup
    summary: dict


def samples_dataset(result: Generated, data: FieldData | StateFieldData, setup: Setup, sampler: SamplerConfig,
                    device: torch.device | str) -> xr.Dataset:
    """Samples as ``<field>(sample, y, x)``, one variable per field with its attrs (units), and each one's radial
    spectrum, with the data's coordinates and the full recipe in attrs: the dataset they were drawn for and the
    device that ran them too."""
    n = data.n
    coord = np.arange(n) * (2 * np.pi / n)
    attrs = provenance("engine.generation", data=data.source, device=str(device), nfe=result.nfe,
                       seconds=result.seconds,
                       model=setup.description.get("model"), checkpoint=setup.description.get("checkpoint"),
                       **{f"noise_{k}": v for k, v in setup.description["noise"].items()},
                       **{f"schedule_{k}": v for k, v in setup.description["schedule"].items()},
                       **{f"sampler_{k}": v for k, v in options(sampler).items()}, **result.errors)
    if isinstance(data, StateFieldData):
        variables = {}
        for c, name in enumerate(data.variables):
            samples = result.samples[:, c]
            variables[name] = (("sample", "y", "x"), samples.numpy(),
                               {**data.variable_attrs[name], "long_name": f"generated {name}"})
            variables[f"{name}_spectrum"] = (("wavenumber",), radial_spectrum(samples).numpy(),
                                             {"long_name": f"shell-summed power spectrum of the generated {name}"})
        attrs["variables"] = list(data.variables)
    else:
        variables = {
            data.variable: (("sample", "y", "x"), result.samples.numpy(), {"long_name": f"generated {data.variable}"}),
            "radial_spectrum": (("wavenumber",), radial_spectrum(result.samples).numpy(),
                                {"long_name": "shell-summed power spectrum of the samples"})}
    return xr.Dataset(variables, coords={"sample": np.arange(result.samples.shape[0]), "y": coord, "x": coord,
                                         "wavenumber": np.arange(n // 2 + 1)}, attrs=attrs)


def sampled_fields(*, store: DataStore, data: str, checkpoint: str | None,
                   variables: list[str] | None) -> FieldData | StateFieldData:
    """The fields to sample: those named, else a checkpoint's own (a generator of several fields samples the state
    it learned; one of one field, the first field, as it always has), else every field variable of the data."""
    if not variables and checkpoint:
        variables = load_checkpoint(store.path(checkpoint), "cpu").get("data", {}).get("variables")
        if variables is None:
            return load_fields(store.path(data))
    return generation_fields(store.path(data), variables)


@dataclass(kw_only=True)
class SampleRequest(Request):
    """Draw ``count`` samples for the dataset ``data`` with the exact or a trained drift."""

    command: ClassVar[str] = "sample"
    summary: ClassVar[str] = "generate samples with the exact or a trained drift"
    data: str = option("dataset (name in the data folder) whose spectrum defines the noise and the errors",
                       required=True)
    checkpoint: str | None = option("trained checkpoint, name in the data folder (with --model unet)")
    count: int = option("number of samples (default: 64)", default=64, type=int)
    out: str | None = option("name in the data folder for the samples (.nc or .zarr)")
    overwrite: bool = option(OVERWRITE, default=False, action="store_true")
    variables: list[str] | None = option("the data variables of one state (default: a checkpoint's own, else every "
                                         "(..., y, x) variable on the first one's grid)", nargs="+")
    device: str = option("default: auto", default="auto", choices=DEVICE_CHOICES)
    noise: NoiseConfig = configs(NoiseConfig, *NOISE_FLAGS)
    schedule: ScheduleConfig = configs(ScheduleConfig, *SCHEDULE_FLAGS)
    model: ModelConfig = configs(ModelConfig, *MODEL_FLAGS)
    sampler: SamplerConfig = configs(SamplerConfig, "", SAMPLER_FLAGS)

    def run(self, *, store: DataStore, callback: Callable[[dict], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> SampleResult:
        return sample(store=store, data=self.data, model=self.model, noise=self.noise, schedule=self.schedule,
                      sampler=self.sampler, count=self.count, checkpoint=self.checkpoint, variables=self.variables,
                      device=self.device, out=self.out, overwrite=self.overwrite, callback=callback)


def sample(*, store: DataStore, data: str, model: ModelConfig, noise: NoiseConfig, schedule: ScheduleConfig,
           sampler: SamplerConfig, count: int = 64, checkpoint: str | None = None, variables: list[str] | None = None,
           device: str = "auto", out: str | None = None, overwrite: bool = False,
           callback: Callable[[dict], None] | None = None) -> SampleResult:
    """Draw ``count`` samples for the dataset ``data`` (its spectrum defines matched noise and the errors)."""
    if count < 1:
        raise EngineError(f"--count must be at least 1, got {count}")
    target = out and store.output_path(out, inputs=(data, checkpoint), overwrite=overwrite)
    resolved = resolve_device(device)
    fields = sampled_fields(store=store, data=data, checkpoint=checkpoint, variables=variables)
    values = count * fields.fields[0].numel()
    if target:
        check_writable(target, need=4.0 * values, what=out)
    check_memory(required=SAMPLE_BYTES * values, what=f"sampling {count} states", device=resolved,
                 fix="ask for fewer with --count (the samples are drawn in one batch)")
    setup = make_setup(model, fields, noise, schedule, checkpoint and str(store.path(checkpoint)), resolved,
                       sampler, name=checkpoint)
    result = generate_samples(setup, sampler, count, resolved, callback)
    if out:
        write_dataset(samples_dataset(result, fields, setup, sampler, resolved), target)
    summary = {"nfe": result.nfe, "seconds": round(result.seconds, 4), "count": count, **result.errors, "out": out}
    return SampleResult(result, setup, summary)


def errors_by_steps(*, store: DataStore, data: str, checkpoint: str, noise: NoiseConfig, schedule: ScheduleConfig,
                    steps: tuple[int, ...], count: int = 128, device: str = "cpu") -> dict[int, float]:
    """Paper 000's measure of a trained drift: the spectral error ε = mean_k |log S_gen(k)/S_data(k)| of ``count``
    Euler samples at each step count (one NFE per step), all from the same noise."""
    resolved = resolve_device(device)
    fields = load_fields(store.path(data))
    setup = make_setup(ModelConfig(kind="unet"), fields, noise, schedule, str(store.path(checkpoint)), resolved,
                       name=checkpoint)
    return {k: generate_samples(setup, SamplerConfig(steps=k), count, resolved).errors["spectral_error"]
            for k in steps}


def steps_to_reach(errors: dict[int, float], threshold: float) -> int | None:
    """The fewest steps from which every larger step count of ``errors`` stays at or below ``threshold`` (None:
    not within the counts tried)."""
    reached = None
    for k in sorted(errors, reverse=True):
        if not errors[k] <= threshold:
            break
        reached = k
    return reached
