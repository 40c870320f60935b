"""``rollout``: roll a trained emulator out from test trajectories, judge it against the truth, write the result.

One request, one direction: ``run_rollout`` loads the test data and the emulator, checks that they fit
(grid and Δt), rolls the ensemble out (``engine.rollout``, refined by ``engine.refine`` when asked), evaluates
VRMSE, band errors, C(τ) and R(t), and writes the netCDF. The CLI adds parsing, a job adds events; neither
re-dispatches. See docs/architecture.md.

The ensemble is made of parts, one per initial condition j, whose noise is seeded ``seed + j``: the parts run one
after another here, or as tasks on a Dask cluster (``engine.cluster``) with the same numbers bit for bit. Each part
is scored as it arrives (``engine.scores``); a .zarr output takes its members as it arrives too, so the ensemble is
never in memory at once.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch
import xarray as xr

from engine.checkpoints import group_members, load_checkpoint, trained_variables
from engine.cluster import ZarrInShares, map_parts, scheduler_address
from engine.config import ForecastSamplerConfig, RolloutConfig, options
from engine.data.catalog import builtin_test_data
from engine.data.io import write_dataset
from engine.data.sequences import Trajectories, check_time_step, load_trajectories, snapshot_spacing
from engine.data.store import DataStore, provenance
from engine.devices import check_memory, resolve_device
from engine.errors import EngineError
from engine.files import check_writable
from engine.forecast import FORECAST_TASKS, load_forecaster
from engine.groups import group_scores, seeded_output, tagged
from engine.models.unet import activation_bytes
from engine.pdd import load_pdd
from engine.pipelines.request import OVERWRITE, SCHEDULER, Request, configs, option
from engine.refine import load_refiner
from engine.rollout import Rollout, check_initial_conditions, initial_conditions, rollout
from engine.scores import EnsembleScores, FieldScores, ensemble_scores

Tensor = torch.Tensor
ZARR_TIME_CHUNK = 32  # saved states per zarr chunk of a rollout's members (a 64² chunk of 16 members: 8 MiB)


@dataclass
class Emulator:
    """A one-step map ``step(u)`` in physical units, the truth it is judged against (physical units, the
    trajectories it starts from), its lead in saved snapshots, and the model that counts network evaluations."""

    step: Callable[[Tensor], Tensor]
    truth: Tensor
    lead: int
    model: object
    generator: torch.Generator  # the noise of ``step``: reseeded per part
    size: str = "tiny"  # the U-Net size, for the memory estimate


@dataclass
class RolloutResult:
    """The rollout itself and its JSON-ready summary (VRMSE and band errors per lead, C(τ), R(t), blow-up step,
    seconds, NFE, and ``out`` when written). Written to a .zarr store, its ``states`` hold no members (read them
    from the store)."""

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
        model = load_pdd(path, device, sampler.precision, sampler.compile)
        if model.ndim != 2 or model.n != trajectories.n:
            raise EngineError(f"{checkpoint} was trained on {model.n}-point {model.ndim}-D data; "
                              f"the test data is {trajectories.n}²")
        check_time_step(trained_dt=model.dt, data_dt=trajectories.dt, n=trajectories.n, data_name=trajectories.source,
                        checkpoint=checkpoint, store=store)
        coarse = model.coarse_grain(model.normalize(truth), config.lam, torch.Generator().manual_seed(sampler.seed))
        stepper = model.stepper(config.lam, noise=sampler.method == "si_em", generator=generator)
        return Emulator(step=stepper, truth=model.denormalize(coarse), lead=1, model=model, generator=generator,
                        size=size)
    if config.lam > 0:
        raise EngineError(f"λ = {config.lam}: only PDD predictors (train --task pdd) simulate coarse-grained fields")
    forecaster = load_forecaster(path, device)
    if forecaster.n != trajectories.n:
        raise EngineError(f"{checkpoint} was trained on {forecaster.n}² fields; the test data is {trajectories.n}²")
    check_time_step(trained_dt=forecaster.dt, data_dt=trajectories.dt, n=trajectories.n,
                    data_name=trajectories.source, checkpoint=checkpoint, store=store)
    return Emulator(step=lambda x: forecaster.step(x, sampler, generator), truth=truth, lead=forecaster.lead,
                    model=forecaster, generator=generator, size=size)


def check_rollout_request(*, store: DataStore, checkpoint: str, data: str) -> None:
    """Refuse, before any worker starts, test data saved at another Δt than the checkpoint (a group: its first
    member) was trained on (reads the checkpoint's metadata and the dataset's time coordinate only)."""
    checkpoint = checkpoints_of(store, checkpoint)[0]
    trained_dt = load_checkpoint(store.path(checkpoint), "cpu").get("data", {}).get("dt")
    with store.open(data) as ds:
        times = np.asarray(ds["time"].values, dtype=float) if "time" in ds.coords else np.zeros(0)
        n = int(ds.sizes.get("x", 0))
    if trained_dt is not None:
        check_time_step(trained_dt=trained_dt, data_dt=snapshot_spacing(times), n=n, data_name=data,
                        checkpoint=checkpoint, store=store)


def check_refiner_fits(*, store: DataStore, refiner: str, trajectories: Trajectories) -> None:
    """Refuse a refiner made for another grid, for fields of another amplitude (its std more than 10× off the test
    data's), or for other fields (another system: an Allen–Cahn ``u`` refiner fades Kolmogorov vorticity)."""
    data = load_checkpoint(store.path(refiner), "cpu").get("data", {})
    if data.get("n") not in (None, trajectories.n):
        raise EngineError(f"the refiner {refiner} works on {data['n']}² fields; the test data is {trajectories.n}²")
    stds = data.get("std", data.get("scales", data.get("scale")))  # an emulator's, a generator's several or one
    tested = np.atleast_1d(trajectories.normalization()["std"])
    if stds and len(np.atleast_1d(stds)) == len(tested) and not np.all(np.abs(np.log10(tested / stds)) < 1):
        raise EngineError(f"the refiner {refiner} was trained on fields of std {_numbers(stds)}{_from(data)}; the "
                          f"test data's std is {_numbers(tested)}: train a refiner on this system")
    names = trained_variables(data)
    if names not in (None, trajectories.variables):
        raise EngineError(f"the refiner {refiner} was trained on {', '.join(names)}{_from(data)}; the test data is "
                          f"{', '.join(trajectories.variables)}: choose a refiner trained on this system")


def _from(data: dict) -> str:
    """`` (the dataset it was trained on)``, as the checkpoint records it."""
    return f" ({data.get('source') or 'its dataset not recorded'})"


def _numbers(values) -> str:
    return ", ".join(f"{float(v):.3g}" for v in np.atleast_1d(values))


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
                    scores: dict | None = None, variables: tuple[str, ...] = (), units: tuple[str, ...] = (),
                    space: dict | None = None, **attrs) -> xr.Dataset:
    """``{variable}(member, time, y, x)`` plus ``spectrum(step, wavenumber)`` with provenance attrs, with ``truth``
    ((trajectory, time, *state), see ``truth_frames``) ``{variable}_truth(trajectory, time, y, x)``, and with the
    ``scores`` of ``evaluate`` ``vrmse``, ``crps`` and ``spread_skill`` over ``lead`` (in steps). States of several
    ``variables`` keep one variable per field: ``{name}``, ``{name}_truth``, ``{name}_spectrum`` and the scores
    ``{name}_vrmse`` … beside their mean over the fields."""
    members = members_dataset(result.states, first=0, dt=dt, variable=variable, config=config,
                              saved_steps=result.saved_steps, variables=variables, units=units, space=space)
    return summary_dataset(result, dt=dt, variable=variable, config=config, truth=truth, scores=scores,
                           variables=variables, units=units, space=space, **attrs).merge(members,
                                                                                          combine_attrs="override")


def split_fields(values: np.ndarray, axis: int, count: int) -> list[np.ndarray]:
    """Each field's values, from an array whose ``axis`` is the channel (absent for one field)."""
    return [values] if count == 1 else [np.take(values, c, axis) for c in range(count)]


def _field_attrs(units: tuple[str, ...], c: int, long_name: str) -> dict:
    return {"long_name": long_name, **({"units": units[c]} if c < len(units) and units[c] else {})}


def members_dataset(states: Tensor, *, first: int, dt: float, variable: str, config: RolloutConfig,
                    saved_steps: list[int], variables: tuple[str, ...] = (), units: tuple[str, ...] = (),
                    space: dict | None = None) -> xr.Dataset:
    """Members ``first…`` of the ensemble: ``{variable}(member, time, y, x)`` (one per field of several
    ``variables``), each member's initial condition, and the saved times (``saved_steps``; columns past the states'
    own are NaN)."""
    names = tuple(variables) or (variable,)
    count, n = states.shape[0], states.shape[-1]
    values = np.full((count, len(saved_steps), *states.shape[2:]), np.nan, dtype=np.float32)
    values[:, : states.shape[1]] = states.numpy()
    member = np.arange(first, first + count)
    fields = {name: (("member", "time", "y", "x"), field, _field_attrs(units, c, f"emulated {name}"))
              for c, (name, field) in enumerate(zip(names, split_fields(values, 2, len(names))))}
    return xr.Dataset(fields, coords={"member": member, "initial_condition": ("member", member // config.members),
                                      **_grid(dt, saved_steps, n, space)})


def summary_dataset(result: Rollout, *, dt: float, variable: str, config: RolloutConfig, truth: Tensor | None = None,
                    scores: dict | None = None, variables: tuple[str, ...] = (), units: tuple[str, ...] = (),
                    space: dict | None = None, **attrs) -> xr.Dataset:
    """Everything of a rollout's dataset but its members: the spectrum of every step, the truth, the scores and
    the provenance attrs (see ``rollout_dataset``)."""
    names = tuple(variables) or (variable,)
    n, several = result.states.shape[-1], len(names) > 1
    out = {}
    for c, (name, spectra) in enumerate(zip(names, split_fields(result.spectra.numpy(), 1, len(names)))):
        out[f"{name}_spectrum" if several else "spectrum"] = (
            ("step", "wavenumber"), spectra, {"long_name": f"member-mean shell-summed power spectrum of {name} at "
                                                           "every step"})
    if truth is not None:
        for c, (name, frames) in enumerate(zip(names, split_fields(truth.float().numpy(), 2, len(names)))):
            out[f"{name}_truth"] = (("trajectory", "time", "y", "x"), frames, _field_attrs(
                units, c, f"{name} of the test data at the same times (NaN past its end); member m started "
                                 "from trajectory initial_condition[m]"))
    coords = {}
    if scores:
        coords["lead"] = ("lead", np.asarray(scores["lead_steps"], dtype=np.int64),
                          {"long_name": "lead time in emulator steps"})
        out.update(_score_variables(scores, "", "" if not several else " (mean over the fields)"))
        for name in names if several else ():
            out.update(_score_variables(scores["per_variable"][name], f"{name}_", f" of {name}"))
    return xr.Dataset(
        out,
        coords={**coords, **_grid(dt, result.saved_steps, n, space), "step": np.arange(result.spectra.shape[0]),
                "wavenumber": np.arange(n // 2 + 1)},
        attrs=provenance("engine.rollout", **{**options(config), "steps_done": result.steps_done,
                                              "blowup_step": result.blowup_step, "stop_reason": result.reason,
                                              "seconds": result.seconds, "refined_steps": len(result.refined),
                                              **({"variables": list(names)} if several else {}), **attrs}))


def _score_variables(scores: dict, prefix: str, which: str) -> dict:
    """VRMSE, CRPS and spread–skill over ``lead`` as dataset variables named ``{prefix}vrmse`` …"""
    return {
        f"{prefix}vrmse": ("lead", np.asarray(scores["vrmse"], dtype=float),
                           {"long_name": f"VRMSE of the members against the truth{which}"}),
        f"{prefix}crps": ("lead", np.asarray(scores["crps"], dtype=float),
                          {"long_name": f"fair ensemble CRPS (field units){which}"}),
        f"{prefix}spread_skill": ("lead", np.asarray(scores["spread_skill"], dtype=float),
                                  {"long_name": f"spread–skill ratio sqrt((m+1)/m var)/RMSE(ensemble mean){which}; 1 "
                                                "is calibrated, NaN with one member"})}


def state_fields(trajectories: Trajectories) -> dict:
    """What the output datasets take from the test data: its fields' names and units, and its grid."""
    return {"variable": trajectories.variable, "variables": trajectories.variables, "units": trajectories.units,
            "space": trajectories.space}


def _grid(dt: float, saved_steps: list[int], n: int, space: dict | None = None) -> dict:
    """The saved times and the grid's coordinates: the test data's own (``space``: {dim: (values, attrs)}, e.g. the
    QG jet's metres), else the periodic square [0, 2π)."""
    coord = np.arange(n) * (2 * math.pi / n)
    grid = {dim: (dim, *space[dim]) if space and dim in space else coord for dim in ("y", "x")}
    return {"time": ("time", np.asarray(saved_steps) * dt, {"units": "model time"}), **grid}


def with_truth_preview(callback: Callable[[dict], None], truth: Tensor, config: RolloutConfig, lead: int,
                       part: int = 0) -> Callable[[dict], None]:
    """Progress events that also carry the truth the part's first member is judged against at that step (None
    past its end) and which part (initial condition) they come from."""
    def report(event: dict) -> None:
        index = config.start + event["step"] * lead
        callback({**event, "part": part, "parts": config.initial_conditions,
                  "truth": truth[part, index].float().cpu() if index < truth.shape[1] else None})

    return report


@dataclass
class Prepared:
    """What every part of one rollout request shares: the request, the test data, the emulator and refiner."""

    config: RolloutConfig
    sampler: ForecastSamplerConfig
    trajectories: Trajectories
    emulator: Emulator
    refine: object
    device: torch.device


def rollout_variables(*, store: DataStore, checkpoint: str, data: str, variables: list[str] | None) -> tuple[str, ...]:
    """The variables a rollout uses: those the checkpoint was trained on (all of them: the state is the emulator's
    whole state; a group's members share theirs), refused when ``variables`` asks for others or the test data lacks
    any, naming them."""
    state = load_checkpoint(store.path(checkpoints_of(store, checkpoint)[0]), "cpu")
    trained = trained_variables(state.get("data", {}))
    if trained is None or state.get("task") not in (*FORECAST_TASKS, "pdd"):  # not an emulator: load_emulator says so
        return tuple(variables or ())
    if variables and tuple(variables) != trained:
        raise EngineError(f"{checkpoint} was trained on {', '.join(trained)}; it cannot be rolled out on "
                          f"{', '.join(variables)} (leave the variables out to use its own)")
    with store.open(data) as ds:
        missing = [name for name in trained if name not in ds.data_vars]
        if missing:
            raise EngineError(f"{data} has no {', '.join(missing)}, which {checkpoint} was trained on "
                              f"({', '.join(trained)}); it has {', '.join(map(str, ds.data_vars)) or 'no variables'}")
    return trained


def prepare(*, store: DataStore, checkpoint: str, data: str, config: RolloutConfig, sampler: ForecastSamplerConfig,
            refiner: str | None, variables: list[str] | None, whole: bool = True) -> Prepared:
    """Load the test data (the checkpoint's variables), the emulator and the refiner, and check that the request
    fits them and memory: the whole ensemble, or with ``whole`` False one part (an initial condition's members) at a
    time."""
    device = resolve_device(config.device)
    names = rollout_variables(store=store, checkpoint=checkpoint, data=data, variables=variables)
    trajectories = load_trajectories(store.path(data), list(names) or None)
    emulator = load_emulator(store=store, checkpoint=checkpoint, trajectories=trajectories, config=config,
                             sampler=sampler, device=device)
    refine = None
    if refiner:
        check_refiner_fits(store=store, refiner=refiner, trajectories=trajectories)
        refine = load_refiner(store.path(refiner), device, renoise=config.renoise, sns_steps=config.refine_steps)
    if refine is not None and config.refine_every == 0:
        config = RolloutConfig(**{**options(config), "refine_every": 1})
    check_initial_conditions(emulator.truth, config)
    ensemble = config.members * (config.initial_conditions if whole else 1)
    saved = config.steps // config.save_every + 1
    per_member = (4.0 * saved * trajectories.channels * trajectories.n**2
                  + activation_bytes(emulator.size, trajectories.n**2) / 4)
    check_memory(required=ensemble * per_member,
                 what=f"a rollout of {ensemble} members" + ("" if whole else " at a time"), device=device,
                 fix="use fewer --members" + (" or --initial-conditions, an --out ending in .zarr (written part by "
                                              "part)," if whole else ",") + " or a larger --save-every")
    return Prepared(config, sampler, trajectories, emulator, refine, device)


@dataclass
class Part:
    """One initial condition's members rolled out, and the network evaluations the emulator and the refiner took."""

    rollout: Rollout
    nfe: int
    refiner_nfe: int = 0


def _refiner_nfe(prepared: Prepared) -> int:
    return prepared.refine.nfe if prepared.refine is not None else 0


def roll_initial_condition(prepared: Prepared, part: int, callback: Callable[[dict], None] | None = None,
                           should_stop: Callable[[], bool] | None = None) -> Part:
    """The ``config.members`` members started from initial condition ``part``, with noise seeded ``seed + part``
    (the emulator's sampler and the refiner alike)."""
    emulator, config = prepared.emulator, prepared.config
    nfe, refiner_nfe = emulator.model.nfe, _refiner_nfe(prepared)
    emulator.generator.manual_seed(prepared.sampler.seed + part)
    if prepared.refine is not None:
        prepared.refine.generator.manual_seed(part)
    one = RolloutConfig(**{**options(config), "initial_conditions": 1})
    start = initial_conditions(emulator.truth[part: part + 1], one).to(prepared.device)
    report = callback and with_truth_preview(callback, emulator.truth, config, emulator.lead, part)
    result = rollout(emulator.step, start, one, data_std=prepared.trajectories.std,
                     data_mean=prepared.trajectories.mean, refiner=prepared.refine,
                     callback=report, should_stop=should_stop)
    return Part(result, emulator.model.nfe - nfe, _refiner_nfe(prepared) - refiner_nfe)


def roll_part(*, root: str, checkpoint: str, data: str, config: dict, sampler: dict, refiner: str | None,
              variables: list[str] | None, part: int) -> Part:
    """One part of a rollout as a cluster task: loads what it needs from the (shared) data folder ``root``."""
    prepared = prepare(store=DataStore(root), checkpoint=checkpoint, data=data, config=RolloutConfig(**config),
                       sampler=ForecastSamplerConfig(**sampler), refiner=refiner, variables=variables, whole=False)
    return roll_initial_condition(prepared, part)


def combine(parts: list[Rollout]) -> Rollout:
    """One ensemble from its parts: members in part order, cut where the part that stopped first stopped (as one
    batch stops at its first bad member); spectra averaged over the parts (equal member counts)."""
    first = min(parts, key=lambda part: part.steps_done)
    done = first.steps_done
    saved_steps = [step for step in parts[0].saved_steps if step <= done]
    states = torch.cat([part.states[:, : len(saved_steps)] for part in parts])
    spectra = torch.stack([part.spectra[: done + 1] for part in parts]).mean(0)
    return Rollout(states=states, saved_steps=saved_steps, spectra=spectra, steps_done=done,
                   blowup_step=first.blowup_step, reason=first.reason, seconds=sum(part.seconds for part in parts),
                   refined=sorted({step for part in parts for step in part.refined if step <= done}))


@dataclass(kw_only=True)
class RolloutRequest(Request):
    """Roll the emulator at ``checkpoint`` out from the test trajectories ``data``."""

    command: ClassVar[str] = "rollout"
    summary: ClassVar[str] = "roll a trained emulator out autoregressively from test data"
    checkpoint: str = option("checkpoint of an emulator run (forecast, noise_baseline, diffusion, ddpm, pointwise, "
                             "fno, sns or pdd; name in the data folder, e.g. runs/si/checkpoint.pt), or a group's "
                             "run folder (train --seeds): each seed rolled out alike, OUT written per seed as "
                             "NAME-seed-K, the scores' spread over the seeds in the summary", required=True)
    data: str | None = option("test trajectories (name in the data folder; default: the built-in Kolmogorov set "
                              "saved at the checkpoint's Δt)")
    variables: list[str] | None = option("the state's variables (default and only choice: those the checkpoint was "
                                         "trained on)", nargs="+")
    refiner: str | None = option("checkpoint of a refiner (train --task refiner) applied every --refine-every steps")
    out: str | None = option("name in the data folder for the rollout (.nc or .zarr)")
    overwrite: bool = option(OVERWRITE, default=False, action="store_true")
    scheduler: str | None = option(SCHEDULER.format(parts="the initial conditions (one task each; the same "
                                                          "numbers as here)"), metavar="ADDRESS")
    config: RolloutConfig = configs(RolloutConfig)
    sampler: ForecastSamplerConfig = configs(ForecastSamplerConfig, "sampler-",
                                             {"method": "sampler", "eps": "eps", "seed": "seed"})

    def run(self, *, store: DataStore, callback: Callable[[dict], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> RolloutResult:
        members = checkpoints_of(store, self.checkpoint)
        data = self.data or builtin_test_data(store, members[0])
        if len(members) == 1 and members[0] == self.checkpoint:
            return self._roll(store, self.checkpoint, data, self.out, callback, should_stop)
        results = []
        for index, member in enumerate(members):  # a group: every member alike, one after another
            results.append(self._roll(store, member, data, seeded_output(self.out, index), tagged(callback, index),
                                      should_stop))
            if results[-1].rollout.reason == "stopped":
                break
        summary = {**results[0].summary, "group": group_scores([result.summary for result in results])}
        return RolloutResult(results[0].rollout, summary)

    def _roll(self, store: DataStore, checkpoint: str, data: str, out: str | None, callback, should_stop):
        return run_rollout(store=store, checkpoint=checkpoint, data=data, config=self.config, sampler=self.sampler,
                           refiner=self.refiner, variables=self.variables, out=out, overwrite=self.overwrite,
                           callback=callback, should_stop=should_stop, scheduler=scheduler_address(self.scheduler))


def checkpoints_of(store: DataStore, checkpoint: str) -> list[str]:
    """The checkpoints a rollout of ``checkpoint`` runs: itself, or every member of the group it names (a run folder
    trained with ``train --seeds``), as names in the data folder."""
    members = group_members(store.path(checkpoint))
    if not members:
        return [checkpoint]
    return [str(path.relative_to(store.root)) for path in members]


def rollout_summary(result: Rollout, parts: list[Part], scores: EnsembleScores | FieldScores, *,
                    data_std: float | list[float], dt: float, variables: tuple[str, ...],
                    out: str | None) -> dict:
    """The scores, the blow-up and stop, the time and the network evaluations of a finished rollout."""
    return {**scores.scores(), **scores.statistics(dt=dt), "blowup_step": result.blowup_step,
            "stop_reason": result.reason, "steps_done": result.steps_done, "seconds": round(result.seconds, 4),
            "nfe": sum(part.nfe for part in parts), "refiner_nfe": sum(part.refiner_nfe for part in parts),
            "refined_steps": len(result.refined), "data_std": data_std, "variables": list(variables), "out": out}


def run_rollout(*, store: DataStore, checkpoint: str, data: str, config: RolloutConfig,
                sampler: ForecastSamplerConfig, refiner: str | None = None, variables: list[str] | None = None,
                out: str | None = None, overwrite: bool = False, callback: Callable[[dict], None] | None = None,
                should_stop: Callable[[], bool] | None = None, scheduler: str | None = None) -> RolloutResult:
    """Roll the emulator at ``checkpoint`` out from the trajectories ``data`` (names in the data folder ``store``),
    here or, with a ``scheduler`` address, one initial condition per task on that Dask cluster.

    Each part is scored as it arrives (``EnsembleScores``). With ``out`` a .zarr store its members are written
    there as they arrive and then dropped (the result's ``states`` hold no members): the ensemble is never in
    memory at once. A rollout stopped by ``should_stop`` writes no .zarr. With a ``refiner`` and
    ``config.refine_every`` = 0 it refines every step.
    """
    target = out and store.output_path(out, inputs=(data, checkpoint, refiner), overwrite=overwrite)
    streamed = bool(target) and target.suffix == ".zarr"
    prepared = prepare(store=store, checkpoint=checkpoint, data=data, config=config, sampler=sampler,
                       refiner=refiner, variables=variables, whole=not streamed)
    config, trajectories, emulator = prepared.config, prepared.trajectories, prepared.emulator
    planned = list(range(0, config.steps + 1, config.save_every))
    if target:
        members = config.members * config.initial_conditions
        check_writable(target, need=4.0 * members * len(planned) * trajectories.channels * trajectories.n**2, what=out)
    scores = ensemble_scores(truth=emulator.truth, config=config, lead=emulator.lead, saved_steps=planned,
                             variables=trajectories.variables)
    writer = ZarrInShares(target, dim="member", size=config.members * config.initial_conditions,
                          chunks={"time": ZARR_TIME_CHUNK}) if streamed else None
    dt = trajectories.dt * emulator.lead

    def arrived(index: int, part: Part) -> None:
        states = part.rollout.states
        scores.add(index, states)
        if writer is not None:
            writer.write(members_dataset(states, first=index * config.members, dt=dt, config=config,
                                         saved_steps=planned, **state_fields(trajectories)),
                         start=index * config.members)
            part.rollout.states = states[:0]  # written: dropped here

    wall = time.perf_counter()
    try:
        parts = _roll_parts(prepared, store=store, request={"checkpoint": checkpoint, "data": data,
                                                            "refiner": refiner, "variables": variables},
                            arrived=arrived, callback=callback, should_stop=should_stop, scheduler=scheduler)
        if writer is not None and parts[-1].rollout.reason == "stopped":
            writer.abandon()
            target = writer = None
    except BaseException:
        if writer is not None:
            writer.abandon()
        raise
    if len(parts) < config.initial_conditions:  # stopped: judge the parts that ran
        config = RolloutConfig(**{**options(config), "initial_conditions": len(parts)})
    result = combine([part.rollout for part in parts])
    result.seconds = time.perf_counter() - wall
    summary = rollout_summary(result, parts, scores, data_std=trajectories.normalization()["std"], dt=trajectories.dt,
                              variables=trajectories.variables, out=out)
    if target:
        _write(result, summary, config=config, target=target, writer=writer, planned=planned, dt=dt,
               truth=emulator.truth, lead=emulator.lead, trajectories=trajectories, checkpoint=checkpoint,
               sampler=sampler, data=data, device=str(prepared.device))
    return RolloutResult(result, summary)


def _roll_parts(prepared: Prepared, *, store: DataStore, request: dict, arrived: Callable[[int, Part], None],
                callback: Callable[[dict], None] | None, should_stop: Callable[[], bool] | None,
                scheduler: str | None) -> list[Part]:
    """Every initial condition's part, here one after another (stopping after the part ``should_stop`` stopped)
    or as tasks on the cluster at ``scheduler``; ``arrived(index, part)`` as each one comes in."""
    count = prepared.config.initial_conditions
    if scheduler is not None:
        request = {**request, "root": str(store.root), "config": options(prepared.config),
                   "sampler": options(prepared.sampler)}
        return map_parts(roll_part, [{**request, "part": part} for part in range(count)], address=scheduler,
                         on_result=arrived)
    parts = []
    for index in range(count):
        parts.append(roll_initial_condition(prepared, index, callback, should_stop))
        arrived(index, parts[-1])
        if parts[-1].rollout.reason == "stopped":
            break
    return parts


def _write(result: Rollout, summary: dict, *, config: RolloutConfig, target: Path, writer: ZarrInShares | None,
           planned: list[int], dt: float, truth: Tensor, lead: int, trajectories: Trajectories, checkpoint: str,
           sampler: ForecastSamplerConfig, data: str, device: str) -> None:
    """The rollout's dataset at ``target``: whole (netCDF), or the members' .zarr store ``writer`` completed with
    the rest and cut to the saved steps every part reached. Its attrs name the checkpoint, the test data and the
    device that ran (not ``auto``)."""
    attrs = {"checkpoint": str(checkpoint), "data": str(data), "device": device,
             **{f"sampler_{k}": v for k, v in options(sampler).items()}}
    fields = state_fields(trajectories)
    if writer is None:
        write_dataset(rollout_dataset(result, dt=dt, config=config, scores=summary, **fields,
                                      truth=truth_frames(truth, result.saved_steps, config, lead), **attrs), target)
        return
    rest = summary_dataset(replace(result, saved_steps=planned), dt=dt, config=config, scores=summary, **fields,
                           truth=truth_frames(truth, planned, config, lead), **attrs)
    writer.finish(rest, keep={"time": slice(0, len(result.saved_steps))})
