"""``superres``: super-resolve coarse-grained test sequences (or generate from noise) with a PDD predictor.

One request, one direction: ``run_superres`` loads the predictor and the test data, checks that they fit (grid
and Δt), draws the coarse input at λ (``superres_inputs``; the dashboard previews the same draw), integrates it
back to λ = 0 (``engine.pdd.PDD.reverse``), denormalizes once, scores the spectra per band and writes the
netCDF. Everything before the end is in the predictor's normalized units. See docs/architecture.md.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import torch
import xarray as xr

from engine.config import PDDSamplerConfig, options
from engine.data.catalog import builtin_test_data
from engine.data.io import write_dataset
from engine.data.sequences import Trajectories, check_time_step, load_sequences, pick_sequences
from engine.data.store import DataStore, provenance
from engine.devices import DEVICE_CHOICES, resolve_device
from engine.diagnostics import spectra
from engine.errors import EngineError
from engine.pdd import PDD, load_pdd
from engine.pipelines.request import OVERWRITE, Request, configs, option
from engine.spectral import BANDS, band_log_errors

Tensor = torch.Tensor
FIELDS = ("input", "output", "truth")  # coarse input, super-resolved output, fine truth


@dataclass
class SuperresInputs:
    """Fine truth sequences and their coarse input at ``sampler.lam`` (or noise), in the model's normalized units,
    and the seeded generator that continues into the reverse integration."""

    truth: Tensor
    coarse: Tensor
    generator: torch.Generator


@dataclass
class SuperresResult:
    """The JSON-ready summary (per-band mean |log S/S_truth| of input and output, seconds, NFE, spectra), the
    dataset (written to ``out`` when given), and the middle frame of the first sequence of each field."""

    summary: dict
    dataset: xr.Dataset
    frames: dict[str, np.ndarray]


def middle_frame(sequences: Tensor) -> Tensor:
    """The frame the views show of a batch of sequences (batch, frames, *grid): sequence 0, the middle frame."""
    return sequences[0, sequences.shape[1] // 2]


def superres_inputs(model: PDD, data: Trajectories, *, sequences: int, sampler: PDDSamplerConfig,
                    from_noise: bool = False) -> SuperresInputs:
    """``sequences`` fine runs of the model's frame count from the data, renormalized by the model's statistics,
    and their coarse input: the forward process at ``sampler.lam``, or (``from_noise``) a draw from the Gaussian
    with the λ-marginal's per-mode variance e^{2μλ}P_k + Q_k(λ) (``PDD.prior_sample``)."""
    physical = data.denormalize(data.fields)
    truth = model.normalize(pick_sequences(physical, sequences, model.frames)).to(model.device)
    generator = torch.Generator(device=model.device).manual_seed(sampler.seed)
    if from_noise:
        coarse = model.prior_sample(sampler.lam, truth.shape, generator)
    else:
        coarse = model.coarse_grain(truth, sampler.lam, generator)
    return SuperresInputs(truth, coarse, generator)


def superres_variables(model: PDD, variable: str | None = None) -> list[str]:
    """The data variables a predictor super-resolves: the fields of its state, or its one (``variable`` if named)."""
    return list(model.variables) or [variable or model.variable]


def open_superres(*, store: DataStore, checkpoint: str, data: str, variable: str | None = None,
                  device: torch.device | str = "cpu", precision: str = "auto",
                  compile: bool = False) -> tuple[PDD, Trajectories]:
    """The PDD predictor (run at ``precision``, compiled if asked) and the test sequences it applies to (same
    grid, same Δt; the fields it was trained on, else ``variable`` or its own variable's name), or a one-line
    error."""
    model = load_pdd(store.path(checkpoint), device, precision, compile)
    sequences = load_sequences(store.path(data), superres_variables(model, variable))
    ndim = sequences.fields.dim() - 2 - (sequences.channels > 1)
    if sequences.n != model.n or ndim != model.ndim:
        raise EngineError(f"{checkpoint} was trained on {model.n}-point {model.ndim}-D fields; {data} has "
                          f"{sequences.n}-point {ndim}-D fields")
    check_time_step(trained_dt=model.dt, data_dt=sequences.dt, n=sequences.n, data_name=data,
                    checkpoint=checkpoint, store=store)
    return model, sequences


def per_variable(model: PDD, fields: dict[str, Tensor]) -> dict[str, dict[str, Tensor]]:
    """``fields`` (input/output/truth → (sequence, frame, *state)) split by the model's variables: one field's as
    they are, each of a state of several fields its channel."""
    if not model.variables:
        return {model.variable: fields}
    return {name: {key: value[:, :, c] for key, value in fields.items()} for c, name in enumerate(model.variables)}


def field_scores(model: PDD, fields: dict[str, Tensor]) -> dict:
    """One field's spectra (mean over sequences and frames) and the per-band mean |log S/S_truth| of input and
    output."""
    power = {key: spectra(value, model.ndim).reshape(-1, model.n // 2 + 1).mean(0) for key, value in fields.items()}
    errors = {key: band_log_errors(power[key], power["truth"]) for key in ("input", "output")}
    return {**{f"{key}_error": {band: errors[key][band] for band in BANDS} for key in errors},
            "spectra": {key: value.numpy() for key, value in power.items()}}


def mean_scores(scores: dict[str, dict]) -> dict:
    """The variables' band errors averaged over them, and the first variable's spectra (one field: its own)."""
    first = next(iter(scores.values()))
    means = {key: {band: float(np.mean([s[key][band] for s in scores.values()])) for band in BANDS}
             for key in ("input_error", "output_error")}
    return {**means, "spectra": first["spectra"]}


def superres_dataset(model: PDD, fields: dict[str, Tensor], *, sampler: PDDSamplerConfig, scores: dict,
                     **attrs) -> xr.Dataset:
    """``{var}_coarse``, ``{var}`` (super-resolved), ``{var}_truth`` over (sequence, frame, grid) for each of the
    model's variables, and their spectra (``spectrum``, ``{var}_spectrum`` for several); ``fields`` maps
    input/output/truth to physical-unit tensors (sequence, frame, *state), ``scores`` each variable's
    ``field_scores``."""
    grid = ("y", "x") if model.ndim == 2 else ("k",)
    dims = ("sequence", "frame", *grid)
    coord = np.arange(model.n) * (2 * math.pi / model.n) if model.ndim == 2 else np.arange(model.n)
    variables = {}
    for name, values in per_variable(model, fields).items():
        power = np.stack([scores[name]["spectra"][key] for key in FIELDS])
        variables.update({
            f"{name}_coarse": (dims, values["input"].numpy(),
                               {"long_name": f"{name} coarse-grained at λ = {sampler.lam}"}),
            name: (dims, values["output"].numpy(), {"long_name": f"{name} super-resolved by reverse-λ integration"}),
            f"{name}_truth": (dims, values["truth"].numpy(), {"long_name": f"{name} of the fine simulation"}),
            f"{name}_spectrum" if model.variables else "spectrum": (
                ("field", "wavenumber"), power,
                {"long_name": f"power spectrum of {name}, mean over sequences and frames"})})
    return xr.Dataset(
        variables,
        coords={"sequence": np.arange(fields["input"].shape[0]),
                "frame": ("frame", np.arange(fields["input"].shape[1]) * model.dt, {"units": "model time"}),
                **{g: coord for g in grid}, "field": list(FIELDS), "wavenumber": np.arange(model.n // 2 + 1),
                "lam": sampler.lam},
        attrs=provenance("engine.pdd", **options(sampler), **attrs))


def frame_preview(model: PDD, callback: Callable[[dict], None]) -> Callable[[dict], None]:
    """Reverse-λ progress events with the shown frame in physical units in place of the whole normalized state."""
    def report(event: dict) -> None:
        state = event.pop("state")
        callback({**event, "frame": model.denormalize(middle_frame(state))})  # on the device: no host sync

    return report


@dataclass(kw_only=True)
class SuperresRequest(Request):
    """Super-resolve coarse-grained test data (or generate from noise) with the PDD predictor at ``checkpoint``."""

    command: ClassVar[str] = "superres"
    summary: ClassVar[str] = ("super-resolve coarse-grained test data (or generate from noise) with a PDD predictor "
                              "by reverse-λ integration")
    checkpoint: str = option("checkpoint of a pdd run (name in the data folder)", required=True)
    data: str | None = option("test trajectories (name in the data folder; default: the built-in Kolmogorov set "
                              "saved at the checkpoint's Δt)")
    variable: str | None = option("data variable of a one-field predictor (default: the one it was trained on; a "
                                  "predictor of several fields uses its own)")
    sequences: int = option("sequences of the model's frame count to super-resolve (default: 1)", default=1,
                            type=int)
    from_noise: bool = option("start from the Gaussian with the λ-marginal's variance e^(2μλ)P_k + Q_k(λ) per mode "
                              "instead of the coarse-grained data (generation; use --lam 1)", default=False,
                              action="store_true")
    device: str = option("default: auto", default="auto", choices=DEVICE_CHOICES)
    out: str | None = option("name in the data folder for coarse input, output, truth and spectra (.nc or .zarr)")
    overwrite: bool = option(OVERWRITE, default=False, action="store_true")
    sampler: PDDSamplerConfig = configs(PDDSamplerConfig, "", {"steps": "lam-steps", "method": "sampler",
                                                               "precision": "sampler-precision",
                                                               "compile": "sampler-compile"})

    def run(self, *, store: DataStore, callback: Callable[[dict], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> SuperresResult:
        return run_superres(store=store, checkpoint=self.checkpoint,
                            data=self.data or builtin_test_data(store, self.checkpoint), sampler=self.sampler,
                            sequences=self.sequences, variable=self.variable, out=self.out,
                            overwrite=self.overwrite, from_noise=self.from_noise, device=self.device,
                            callback=callback, should_stop=should_stop)


def run_superres(*, store: DataStore, checkpoint: str, data: str, sampler: PDDSamplerConfig, sequences: int = 1,
                 variable: str | None = None, out: str | None = None, overwrite: bool = False,
                 from_noise: bool = False, device: str = "auto", callback: Callable[[dict], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> SuperresResult:
    """Super-resolve ``sequences`` runs of the test data coarse-grained at ``sampler.lam`` (or generate from noise
    at that λ) with the PDD checkpoint."""
    if sequences < 1:
        raise EngineError(f"--sequences must be at least 1, got {sequences}")
    target = out and store.output_path(out, inputs=(data, checkpoint), overwrite=overwrite)
    model, test_data = open_superres(store=store, checkpoint=checkpoint, data=data, variable=variable,
                                     device=resolve_device(device), precision=sampler.precision,
                                     compile=sampler.compile)
    inputs = superres_inputs(model, test_data, sequences=sequences, sampler=sampler, from_noise=from_noise)
    start = time.perf_counter()
    output = model.reverse(inputs.coarse, sampler, inputs.generator,
                           callback=callback and frame_preview(model, callback), should_stop=should_stop)
    seconds = time.perf_counter() - start
    if not torch.isfinite(output).all():
        raise EngineError(f"reverse-λ integration diverged (NaN/inf) with {sampler.steps} steps; use more λ steps "
                          "or the gaussian integrator")
    normalized = dict(zip(FIELDS, (inputs.coarse, output, inputs.truth)))
    fields = {key: model.denormalize(value).cpu() for key, value in normalized.items()}
    scores = {name: field_scores(model, values) for name, values in per_variable(model, fields).items()}
    summary = {"lam": sampler.lam, "steps": sampler.steps, "sequences": sequences, "frames": model.frames,
               "seconds": round(seconds, 3), "nfe": model.nfe, "from_noise": from_noise,
               **mean_scores(scores), "out": out}
    if model.variables:
        summary["per_variable"] = scores
    dataset = superres_dataset(model, fields, sampler=sampler, scores=scores, seconds=summary["seconds"],
                               nfe=summary["nfe"], checkpoint=str(checkpoint), data=str(data),
                               from_noise=int(from_noise), device=str(resolve_device(device)))
    if out:
        write_dataset(dataset, target)
    return SuperresResult(summary, dataset, {key: middle_frame(value).numpy() for key, value in fields.items()})
