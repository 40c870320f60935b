"""Autoregressive ensemble rollouts and their diagnostics against the truth.

``rollout(step, initial, config)`` applies any one-step map (a trained ``Forecaster`` with its sampler, or a
closure) to an ensemble, keeps every ``save_every``-th state and the member-mean power spectrum of *every*
step, and stops at the first NaN or blow-up (max|u − mean| above ``blowup`` data std), reporting the step and keeping
what was computed. The blow-up check syncs with the host once every ``CHECK_EVERY`` steps, not per step.

Refinement toward the data distribution is ``engine.refine``; the whole request (load, roll out, evaluate,
write) is ``engine.pipelines.rollout``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from engine.config import RolloutConfig
from engine.errors import EngineError
from engine.scores import EnsembleScores, FieldScores, ensemble_scores
from engine.spectral import shell_spectra

Tensor = torch.Tensor
CHECK_EVERY = 16  # steps between host syncs for the NaN / blow-up check
PREVIEW_SECONDS = 1 / 30  # least time between progress events (each carries a preview field and spectrum): 30 fps


@dataclass
class Rollout:
    """States ``(member, saved, *state)`` (physical units, CPU; a state is (n, n), or (C, n, n) for C fields), the
    saved step indices, the member-mean power spectrum of every step ``(step, N/2 + 1)`` (per field: ``(step, C,
    N/2 + 1)``), and where and why it stopped early (None when it did not)."""

    states: Tensor
    saved_steps: list[int]
    spectra: Tensor
    steps_done: int
    blowup_step: int | None = None
    reason: str | None = None
    seconds: float = 0.0
    refined: list[int] = field(default_factory=list)


def _check(x: Tensor, mean: Tensor, limit: Tensor) -> Tensor:
    """Per member (and field): NaN/inf anywhere or max|x − mean| above the limit (per field: (C, 1, 1) and (C,));
    stays on the device."""
    return ~torch.isfinite(x).all(dim=(-2, -1)) | ((x - mean).abs().amax(dim=(-2, -1)) > limit)


def _first_bad(flags: list[Tensor], last_step: int) -> int | None:
    """The first step whose flag is set, given the flags of the steps up to ``last_step``."""
    bad = torch.stack(flags)
    return last_step - len(flags) + 1 + int(torch.nonzero(bad)[0]) if bool(bad.any()) else None


def _saved_states(initial: Tensor, count: int) -> Tensor:
    """A float32 CPU tensor (member, ``count``, n, n) for the saved states, ``initial`` in the first slot: written
    in place, so the states are never held twice (the pages the OS gives it are only those written)."""
    states = torch.empty((initial.shape[0], count, *initial.shape[1:]), dtype=torch.float32)
    states[:, 0] = initial.cpu()
    return states


def _kept(states: Tensor, count: int) -> Tensor:
    """The first ``count`` saved states: all of them for a rollout that ran its course, else copied out (a view
    would keep, and pickle to a cluster's client, the whole preallocated tensor)."""
    return states if count == states.shape[1] else states[:, :count].clone()


def rollout(step: Callable[[Tensor], Tensor], initial: Tensor, config: RolloutConfig, *, data_std: float | Tensor,
            data_mean: float | Tensor = 0.0, refiner: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None = None,
            callback: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None) -> Rollout:
    """Advance ``initial`` (member, *state) by ``config.steps`` applications of ``step``; see the module doc.
    ``refiner(x, previous) -> (refined x, mask of refined members)`` runs every ``config.refine_every`` steps, with
    the state the step started from; ``data_std`` and ``data_mean``: floats, or per field (C, 1, 1)."""
    limit = config.blowup * torch.as_tensor(data_std, dtype=torch.float32).flatten().to(initial.device)
    mean = torch.as_tensor(data_mean, dtype=torch.float32).to(initial.device)
    x, start = initial, time.perf_counter()
    states = _saved_states(x, config.steps // config.save_every + 1)
    saved_steps, spectra, flags, refined = [0], [shell_spectra(x).mean(0)], [], []
    done, blowup, reason, last_event = 0, None, None, 0.0
    for k in range(1, config.steps + 1):
        previous, x = x, step(x)
        if refiner is not None and config.refine_every and k % config.refine_every == 0:
            x, mask = refiner(x, previous)
            if bool(mask.any()):
                refined.append(k)
        flags.append(_check(x, mean, limit).any())
        spectra.append(shell_spectra(x).mean(0))
        done = k
        if k % config.save_every == 0:
            states[:, len(saved_steps)] = x.cpu()  # the one transfer per save, into the preallocated float32
            saved_steps.append(k)
        stop = should_stop is not None and should_stop()  # a host-side flag: no device sync
        if k % CHECK_EVERY == 0 or k == config.steps or stop:
            blowup = _first_bad(flags, k)  # one host sync per CHECK_EVERY steps
            if blowup is not None:
                finite = bool(torch.isfinite(x).all())
                reason = f"max|u − mean| above {config.blowup} data std" if finite else "NaN or infinite values"
                break
            flags = []
        if callback is not None and (time.perf_counter() - last_event >= PREVIEW_SECONDS or k == config.steps):
            callback({"kind": "progress", "step": k, "steps": config.steps, "preview": x[0].float().cpu(),
                      "spectrum": spectra[-1].cpu()})  # the one host sync a preview needs, at most 30 per second
            last_event = time.perf_counter()
        if stop:
            reason = "stopped"
            break
    if blowup is not None:  # keep what was computed up to the last good step
        saved_steps, spectra = [s for s in saved_steps if s < blowup], spectra[:blowup]
        done = blowup - 1
    return Rollout(states=_kept(states, len(saved_steps)), saved_steps=saved_steps, spectra=torch.stack(spectra).cpu(),
                   steps_done=done, blowup_step=blowup, reason=reason, seconds=time.perf_counter() - start,
                   refined=refined)


def check_initial_conditions(trajectories: Tensor, config: RolloutConfig) -> None:
    """Refuse more initial conditions than the test data has trajectories, or a start past its end."""
    count, length = trajectories.shape[:2]
    if config.initial_conditions > count:
        raise EngineError(f"{config.initial_conditions} initial conditions asked for; the test data has {count} "
                          f"trajectories")
    if config.start >= length:
        raise EngineError(f"start index {config.start} is past the {length} snapshots of the test data")


def initial_conditions(trajectories: Tensor, config: RolloutConfig) -> Tensor:
    """The ensemble's start: ``config.members`` copies of each of the first ``initial_conditions`` trajectories
    at time index ``start``. trajectories: (trajectory, time, n, n) physical units → (ic × members, n, n)."""
    check_initial_conditions(trajectories, config)
    return trajectories[: config.initial_conditions, config.start].repeat_interleave(config.members, 0)


def evaluate(result: Rollout, trajectories: Tensor, config: RolloutConfig, lead: int,
             variables: tuple[str, ...] = ()) -> dict:
    """VRMSE, band sRMSE, ensemble CRPS and spread–skill per saved lead time against the truth where the test
    data reaches, and the sliced W₁ between emulated and true consecutive-state pairs (``EnsembleScores``, one part
    per initial condition). VRMSE and sRMSE are scored in units of the test data's standard deviation, so that the
    references' ε = 10⁻⁶ does not depend on the data's units (the QG jet's PV is ~10⁻⁵ s⁻¹: in SI units ε dwarfed
    its variance and spectrum).

    trajectories: (trajectory, time, *state) physical units, the ones the ensemble started from; states of several
    fields are scored per field (``variables`` names them) and as the mean over the fields (``FieldScores``).
    """
    return _scored(result, trajectories, config, lead, variables).scores()


def statistics(result: Rollout, truth: Tensor, config: RolloutConfig, dt: float, lead: int,
               variables: tuple[str, ...] = ()) -> dict:
    """C(τ) and R(t) of the emulated ensemble and of the truth at the same saved times (docs/science.md §5)."""
    return _scored(result, truth, config, lead, variables).statistics(dt=dt)


def _scored(result: Rollout, trajectories: Tensor, config: RolloutConfig, lead: int,
            variables: tuple[str, ...]) -> EnsembleScores | FieldScores:
    """The ensemble's scores, its members split into parts by initial condition."""
    if trajectories.dim() == 5 and not variables:
        variables = tuple(f"field {c}" for c in range(trajectories.shape[2]))
    scores = ensemble_scores(truth=trajectories, config=config, lead=lead, saved_steps=result.saved_steps,
                             variables=variables or ("field",))
    for part, states in enumerate(result.states.split(config.members)):
        scores.add(part, states)
    return scores
