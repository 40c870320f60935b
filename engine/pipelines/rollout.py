"""``rollout``: roll a trained emulator out from test trajectories, judge it against the truth, write the result.

One request, one direction: ``run_rollout`` loads the test data and the emulator, checks that they fit
(grid and Δt), rolls the ensemble out (``engine.rollout``, refined by ``engine.refine`` when asked), evaluates
VRMSE, band errors, C(τ) and R(t), and writes the netCDF. The CLI adds parsing, a job adds events; neither
re-dispatches. See docs/architecture.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import xarray as xr

from engine.checkpoints import load_checkpoint
from engine.config import ForecastSamplerConfig, RolloutConfig, options
from engine.data.sequences import Trajectories, check_time_step, load_trajectories, snapshot_spacing
from engine.data.store import DataStore, provenance, write_dataset
from engine.devices import check_memory, resolve_device
from engine.errors import EngineError
from engine.forecast import load_forecaster
from engine.models.unet import activation_bytes
from engine.pdd import load_pdd
from engine.refine import load_refiner
from engine.rollout import Rollout, evaluate, initial_conditions, rollout, statistics

Tensor = torch.Tensor


@dataclass
class Emulator:
    """A one-step map ``step(u)`` in physical units, the truth it is judged against (physical units, the
    trajectories it starts from), its lead in saved snapshots, and the model that counts network evaluations."""

    step: Callable[[Tensor], Tensor]
    truth: Tensor
    lead: int
    model: object
    size: str = "tiny"  # the U-Net size, for the memory estimate


@dataclass
class RolloutResult:
    """The rollout itself and its JSON-ready summary (VRMSE and band errors per lead, C(τ), R(t), blow-up step,
    seconds, NFE, and ``out`` when written)."""

    rollout: Rollout
    summary: dict


def load_emulator(*, store: DataStore, checkpoint: str, trajectories: Trajectories, config: RolloutConfig,
                  sampler: ForecastSamplerConfig, device: torch.device) -> Emulator:
    """The checkpoint's one-step map and the truth it is judged against.

    Forecasters step ``u_n → u_{n+lead}`` with the sampler; a PDD predictor simulates at ``config.lam`` (noise on
    with the ``si_em`` sampler, off with ``si_e``/``pf_ode``), judged against the test data coarse-grained at that λ.
    """
    path = store.path(checkpoint)
    state = load_checkpoint(path, "cpu")
    task, size = state.get("task"), state["configs"]["model"]["size"]
    generator = torch.Generator(device=device).manual_seed(sampler.seed)
    truth = trajectories.denormalize(trajectories.fields)
    if task == "pdd":
        model = load_pdd(path, device)
        if model.ndim != 2 or model.n != trajectories.n:
            raise EngineError(f"{checkpoint} was trained on {model.n}-point {model.ndim}-D data; "
                              f"the test data is {trajectories.n}²")
        check_time_step(trained_dt=model.dt, data_dt=trajectories.dt, n=trajectories.n, data_name=trajectories.source,
                        checkpoint=checkpoint, store=store)
        coarse = model.coarse_grain(model.normalize(truth), config.lam, torch.Generator().manual_seed(sampler.seed))
        stepper = model.stepper(config.lam, noise=sampler.method == "si_em", generator=generator)
        return Emulator(step=stepper, truth=model.denormalize(coarse), lead=1, model=model, size=size)
    if config.lam > 0:
        raise EngineError(f"λ = {config.lam}: only PDD predictors (train --task pdd) simulate coarse-grained fields")
    forecaster = load_forecaster(path, device)
    if forecaster.n != trajectories.n:
        raise EngineError(f"{checkpoint} was trained on {forecaster.n}² fields; the test data is {trajectories.n}²")
    check_time_step(trained_dt=forecaster.dt, data_dt=trajectories.dt, n=trajectories.n,
                    data_name=trajectories.source, checkpoint=checkpoint, store=store)
    return Emulator(step=lambda x: forecaster.step(x, sampler, generator), truth=truth, lead=forecaster.lead,
                    model=forecaster, size=size)


def check_rollout_request(*, store: DataStore, checkpoint: str, data: str) -> None:
    """Refuse, before any worker starts, test data saved at another Δt than the checkpoint was trained on (reads
    the checkpoint's metadata and the dataset's time coordinate only)."""
    trained_dt = load_checkpoint(store.path(checkpoint), "cpu").get("data", {}).get("dt")
    with store.open(data) as ds:
        times = np.asarray(ds["time"].values, dtype=float) if "time" in ds.coords else np.zeros(0)
        n = int(ds.sizes.get("x", 0))
    if trained_dt is not None:
        check_time_step(trained_dt=trained_dt, data_dt=snapshot_spacing(times), n=n, data_name=data,
                        checkpoint=checkpoint, store=store)


def truth_frames(trajectories: Tensor, saved_steps: list[int], config: RolloutConfig, lead: int) -> Tensor:
    """The test data at the rollout's saved steps, per initial condition: (ic, saved, n, n), NaN past its end."""
    length = trajectories.shape[1]
    out = torch.full((config.initial_conditions, len(saved_steps), *trajectories.shape[2:]), float("nan"))
    for column, step in enumerate(saved_steps):
        index = config.start + step * lead
        if index < length:
            out[:, column] = trajectories[: config.initial_conditions, index].cpu()
    return out


def rollout_dataset(result: Rollout, *, dt: float, variable: str, config: RolloutConfig, truth: Tensor | None = None,
                    **attrs) -> xr.Dataset:
    """``{variable}(member, time, y, x)`` plus ``spectrum(step, wavenumber)`` with provenance attrs, and with
    ``truth`` ((trajectory, time, n, n), see ``truth_frames``) ``{variable}_truth(trajectory, time, y, x)``."""
    n = result.states.shape[-1]
    coord = np.arange(n) * (2 * math.pi / n)
    members = result.states.shape[0]
    variables = {variable: (("member", "time", "y", "x"), result.states.numpy(),
                            {"long_name": f"emulated {variable}"}),
                 "spectrum": (("step", "wavenumber"), result.spectra.numpy(),
                              {"long_name": "member-mean shell-summed power spectrum at every step"})}
    if truth is not None:
        variables[f"{variable}_truth"] = (("trajectory", "time", "y", "x"), truth.float().numpy(),
                                          {"long_name": f"{variable} of the test data at the same times (NaN past "
                                                        "its end); member m started from trajectory "
                                                        "initial_condition[m]"})
    return xr.Dataset(
        variables,
        coords={"member": np.arange(members), "initial_condition": ("member", np.arange(members) // config.members),
                "time": ("time", np.asarray(result.saved_steps) * dt, {"units": "model time"}),
                "step": np.arange(result.spectra.shape[0]), "wavenumber": np.arange(n // 2 + 1),
                "y": coord, "x": coord},
        attrs=provenance("engine.rollout", **options(config), steps_done=result.steps_done,
                         blowup_step=result.blowup_step, stop_reason=result.reason, seconds=result.seconds,
                         refined_steps=len(result.refined), **attrs))


def with_truth_preview(callback: Callable[[dict], None], truth: Tensor, config: RolloutConfig,
                       lead: int) -> Callable[[dict], None]:
    """Progress events that also carry the truth member 0 is judged against at that step (None past its end)."""
    def report(event: dict) -> None:
        index = config.start + event["step"] * lead
        callback({**event, "truth": truth[0, index].float().cpu() if index < truth.shape[1] else None})

    return report


def run_rollout(*, store: DataStore, checkpoint: str, data: str, config: RolloutConfig,
                sampler: ForecastSamplerConfig, refiner: str | None = None, variable: str | None = None,
                out: str | None = None, overwrite: bool = False, callback: Callable[[dict], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> RolloutResult:
    """Roll the emulator at ``checkpoint`` out from the trajectories ``data`` (names in the data folder ``store``).

    With a ``refiner`` and ``config.refine_every`` = 0 it refines every step.
    """
    target = out and store.output_path(out, inputs=(data, checkpoint, refiner), overwrite=overwrite)
    device = resolve_device(config.device)
    trajectories = load_trajectories(store.path(data), variable)
    emulator = load_emulator(store=store, checkpoint=checkpoint, trajectories=trajectories, config=config,
                             sampler=sampler, device=device)
    refine = load_refiner(store.path(refiner), device, renoise=config.renoise) if refiner else None
    if refine is not None and config.refine_every == 0:
        config = RolloutConfig(**{**options(config), "refine_every": 1})
    truth, lead = emulator.truth, emulator.lead
    ensemble = config.members * config.initial_conditions
    saved = config.steps // config.save_every + 1
    per_member = 4.0 * saved * trajectories.n**2 + activation_bytes(emulator.size, trajectories.n**2) / 4
    check_memory(required=ensemble * per_member,
                 what=f"a rollout of {ensemble} members", device=device,
                 fix="use fewer --members or --initial-conditions, or a larger --save-every")
    report = callback and with_truth_preview(callback, truth, config, lead)
    result = rollout(emulator.step, initial_conditions(truth, config).to(device), config, data_std=trajectories.std,
                     refiner=refine, callback=report, should_stop=should_stop)
    summary = {**evaluate(result, truth, config, lead), **statistics(result, truth, config, trajectories.dt, lead),
               "blowup_step": result.blowup_step, "stop_reason": result.reason, "steps_done": result.steps_done,
               "seconds": round(result.seconds, 4), "nfe": emulator.model.nfe, "refined_steps": len(result.refined),
               "out": out}
    if out:
        dataset = rollout_dataset(result, dt=trajectories.dt * lead, variable=trajectories.variable, config=config,
                                  truth=truth_frames(truth, result.saved_steps, config, lead),
                                  checkpoint=str(checkpoint),
                                  **{f"sampler_{k}": v for k, v in options(sampler).items()})
        write_dataset(dataset, target)
    return RolloutResult(result, summary)
