"""An ensemble's scores gathered part by part: each part is one initial condition's members, and ``EnsembleScores``
keeps only sums over the parts (per saved column, per lead and lag), so a rollout whose members arrive one part at
a time (a Dask cluster, a .zarr written as it goes) is scored without holding the ensemble in memory.

The scores (``scores``) are those of ``engine.rollout.evaluate``: VRMSE, band sRMSE, fair CRPS and spread–skill per
lead, and the sliced W₁ between emulated and true consecutive-state pairs; ``statistics`` gives C(τ) and R(t) of the
emulated members and of the truth at the same saved times (docs/science.md §5). Parts may stop at different steps:
the ensemble is judged on the saved columns every part reached (``columns``), as if it had stopped there.
"""
from __future__ import annotations

import numpy as np
import torch

from engine.config import RolloutConfig
from engine.diagnostics import (
    CORRELATION_FORMS,
    band_errors_of_spectra,
    correlation,
    crps,
    lagged_correlations,
    mean_over_starts,
    projected_w1,
    rate_of_change,
    shell_spectra,
    sliced_directions,
    spread_and_skill,
    spread_skill_ratio,
    vrmse,
)
from engine.errors import EngineError

Tensor = torch.Tensor
MAX_LAG = 20  # lags of C(τ)


class EnsembleScores:
    """Sums over the parts of one ensemble rollout, from which its scores follow exactly.

    truth: the test trajectories (trajectory, time, n, n) in physical units, the ones the parts start from;
    part ``j`` starts from trajectory ``j`` at ``config.start``, with ``config.members`` members.
    """

    def __init__(self, *, truth: Tensor, config: RolloutConfig, lead: int, saved_steps: list[int]):
        """``saved_steps``: the steps the rollout saves (its columns), as planned before it runs."""
        self.truth, self.config, self.lead, self.saved_steps = truth, config, lead, list(saved_steps)
        self.unit = float(truth.std())
        length = truth.shape[1]
        self.usable = sum(config.start + s * lead < length for s in saved_steps)  # columns the truth reaches
        self.parts: dict[int, dict[str, Tensor]] = {}
        self.theta = sliced_directions(2 * truth.shape[-1] ** 2)  # ``transition_distance``'s directions

    def add(self, part: int, states: Tensor) -> None:
        """Fold in part ``part``'s members ``states`` (member, saved columns reached, n, n), physical units."""
        if part in self.parts:
            raise EngineError(f"part {part} of the ensemble arrived twice")
        m, reached = states.shape[:2]
        usable = min(self.usable, reached)
        truth = self._truth(part, usable)
        judged = states[:, :usable].to(truth.dtype)
        sums = {"reached": torch.tensor(reached), "usable": torch.tensor(usable),
                "vrmse": vrmse(judged / self.unit, truth.expand_as(judged) / self.unit) * m,
                "spectrum": shell_spectra(judged / self.unit).sum(0),
                "truth_spectrum": shell_spectra(truth / self.unit) * m,
                "crps": crps(judged[None], truth[None]),
                "pairs": self._projected_pairs(judged),
                "lagged": sum(lagged_correlations(member, MAX_LAG) for member in states),
                "rate": sum(rate_of_change(member[None].double(), 1.0) for member in states)}  # per column
        if m > 1:
            sums["spread"], sums["skill"] = spread_and_skill(judged[None], truth[None])
        self.parts[part] = sums

    def columns(self) -> int:
        """Saved columns every part reached."""
        return min(int(sums["reached"]) for sums in self.parts.values())

    def scores(self) -> dict:
        """``evaluate``'s scores over the parts added, on the columns every part reached."""
        usable = min(int(sums["usable"]) for sums in self.parts.values())
        steps = self.saved_steps[:usable]
        if not usable:
            return {"lead_steps": [], "vrmse": [], "band_errors": {"low": [], "mid": [], "high": []}, "crps": [],
                    "spread_skill": [], "transition_w1": None}
        parts, members = list(self.parts.values()), len(self.parts) * self.config.members

        def total(key: str) -> Tensor:
            return sum(sums[key][:usable] for sums in parts)

        bands = band_errors_of_spectra(total("spectrum") / members, total("truth_spectrum") / members,
                                       self.truth.shape[-1])
        ic = len(parts)
        spread = spread_skill_ratio(total("spread") / ic, total("skill") / ic, members=self.config.members) \
            if self.config.members > 1 else torch.full((usable,), float("nan"), dtype=torch.float64)
        return {"lead_steps": steps, "vrmse": (total("vrmse") / members).tolist(),
                "band_errors": {band: values.tolist() for band, values in bands.items()},
                "crps": (total("crps") / ic).tolist(),
                "spread_skill": [None if value != value else value for value in spread.tolist()],
                "transition_w1": self._transition_w1(usable) if usable > 1 else None}

    def _truth(self, part: int, columns: int) -> Tensor:
        """Trajectory ``part`` at the first ``columns`` saved columns: (columns, n, n)."""
        return self.truth[part, [self.config.start + s * self.lead for s in self.saved_steps[:columns]]]

    def _projected_pairs(self, states: Tensor) -> Tensor:
        """Consecutive-state pairs (u_k, u_{k+1}) of every member projected on the sliced W₁'s directions:
        (member, columns − 1, PROJECTIONS)."""
        pairs = torch.cat([states[:, :-1], states[:, 1:]], dim=-1).flatten(2)
        return pairs.double() @ self.theta

    def _transition_w1(self, usable: int) -> float:
        emulated = torch.cat([sums["pairs"][:, : usable - 1].flatten(0, 1) for sums in self.parts.values()])
        truth = torch.stack([self._truth(part, usable) for part in sorted(self.parts)])
        true_pairs = self._projected_pairs(truth).flatten(0, 1)
        return float(projected_w1(emulated, true_pairs))

    def statistics(self, *, dt: float) -> dict:
        """C(τ) (paper 004's form) and R(t) of the members and of the truth at the same saved times, on the columns
        every part reached."""
        columns, runs = self.columns(), len(self.parts) * self.config.members
        saved_steps = self.saved_steps[:columns]
        frames = [self.config.start + s * self.lead for s in saved_steps
                  if self.config.start + s * self.lead < self.truth.shape[1]]
        window = self.truth[: len(self.parts), frames].double()
        lags = max(0, min(MAX_LAG, len(frames) - 1, columns - 1))
        lagged = sum(sums["lagged"][:columns] for sums in self.parts.values())
        emulated = mean_over_starts(lagged, runs=runs, max_lag=lags)
        out = {"correlation": {"emulator": emulated.tolist(), "truth": correlation(window, lags).tolist()},
               "correlation_form": CORRELATION_FORMS["paper"],
               "saved_time": [s * self.lead * dt for s in saved_steps]}
        if columns > 1 and len(frames) > 1:
            step = dt * self.lead * self.config.save_every
            rate = sum(sums["rate"][: columns - 1] for sums in self.parts.values()) / runs / step
            out["rate"] = {"emulator": rate.tolist(), "truth": rate_of_change(window, step).tolist()}
        return out


class FieldScores:
    """The scores of an ensemble of multi-field states (member, saved, C, n, n): one ``EnsembleScores`` per field
    (channel c is ``variables[c]``), reported per variable (``per_variable``) and as their mean over the fields (the
    mean of R(t) mixes the fields' units where they differ: a summary only)."""

    def __init__(self, *, truth: Tensor, config: RolloutConfig, lead: int, saved_steps: list[int],
                 variables: tuple[str, ...]):
        """truth: (trajectory, time, C, n, n) in physical units."""
        self.variables = tuple(variables)
        self.fields = [EnsembleScores(truth=truth[:, :, c], config=config, lead=lead, saved_steps=saved_steps)
                       for c in range(len(self.variables))]

    def add(self, part: int, states: Tensor) -> None:
        """Fold in part ``part``'s members ``states`` (member, saved columns reached, C, n, n)."""
        for c, field in enumerate(self.fields):
            field.add(part, states[:, :, c])

    def columns(self) -> int:
        return self.fields[0].columns()

    def scores(self) -> dict:
        per_variable = {name: field.scores() for name, field in zip(self.variables, self.fields)}
        return {**mean_over_fields(list(per_variable.values())), "per_variable": per_variable}

    def statistics(self, *, dt: float) -> dict:
        per_variable = {name: field.statistics(dt=dt) for name, field in zip(self.variables, self.fields)}
        return {**mean_over_fields(list(per_variable.values())), "per_variable_statistics": per_variable}


def mean_over_fields(reports: list[dict]) -> dict:
    """Several fields' reports as one: numbers and lists of numbers averaged over the fields (a None, a lead
    without a spread, counts as NaN there and comes back None), anything else taken from the first."""
    first = reports[0]
    out = {}
    for key, value in first.items():
        values = [report[key] for report in reports]
        if isinstance(value, dict):
            out[key] = mean_over_fields(values)
        elif key == "lead_steps" or not _numeric(value):
            out[key] = value
        else:
            out[key] = _numbers(np.mean(np.asarray(values, dtype=float), axis=0))
    return out


def _numeric(value) -> bool:
    """A number, or a non-empty list of numbers and Nones."""
    if isinstance(value, list):
        return bool(value) and all(v is None or isinstance(v, (int, float)) for v in value)
    return isinstance(value, (int, float))


def _numbers(mean: np.ndarray) -> float | list | None:
    """An average back as plain numbers, NaN as None."""
    plain = [None if v != v else v for v in np.atleast_1d(mean).tolist()]
    return plain if np.ndim(mean) else plain[0]


def ensemble_scores(*, truth: Tensor, config: RolloutConfig, lead: int, saved_steps: list[int],
                    variables: tuple[str, ...]) -> EnsembleScores | FieldScores:
    """The scores an ensemble of states of ``variables`` is judged by: per field when there are several."""
    if len(variables) > 1:
        return FieldScores(truth=truth, config=config, lead=lead, saved_steps=saved_steps, variables=variables)
    return EnsembleScores(truth=truth, config=config, lead=lead, saved_steps=saved_steps)
