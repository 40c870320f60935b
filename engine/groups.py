"""Groups of runs: one configuration trained from several seeds (``train --seeds K``), as APEBench reports its
emulators and W&B groups runs. A group is a run folder holding ``seed-0``, ``seed-1``, … each a run folder of its
own; a rollout of the group rolls out every member alike and reports, per lead, the mean of each score over the
seeds with its standard deviation and range.
"""
from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Callable

SPREAD_SCORES = ("vrmse", "crps")  # the scores a group reports with their spread over seeds


def member_folder(group: str, index: int) -> str:
    """The run folder of a group's ``index``-th member: ``<group>/seed-<index>``."""
    return f"{group.rstrip('/')}/seed-{index}"


def tagged(callback: Callable[[dict], None] | None, index: int) -> Callable[[dict], None] | None:
    """``callback`` with each event marked as the group member ``index``'s (``"seed": index``); None stays None."""
    if callback is None:
        return None
    return lambda event: callback({**event, "seed": index})


def seeded_output(out: str | None, index: int) -> str | None:
    """A member's output beside the group's name: ``rollouts/r.nc`` → ``rollouts/r-seed-0.nc``."""
    if out is None:
        return None
    path = Path(out)
    return str(path.with_name(f"{path.stem}-seed-{index}{path.suffix}"))


def spread_over_seeds(rows: list[list[float]]) -> dict[str, list[float]]:
    """Per position, the mean, sample standard deviation (0 for one seed), minimum and maximum over the rows (one
    row per seed), over the positions every row reached; NaN entries (an undefined score) are left out."""
    length = min(len(row) for row in rows)
    columns = [[value for value in (row[i] for row in rows) if value is not None and not math.isnan(value)]
               for i in range(length)]
    return {"mean": [statistics.fmean(c) if c else math.nan for c in columns],
            "std": [statistics.stdev(c) if len(c) > 1 else 0.0 for c in columns],
            "min": [min(c) if c else math.nan for c in columns], "max": [max(c) if c else math.nan for c in columns]}


def group_scores(summaries: list[dict]) -> dict:
    """The group's scores from its members' rollout summaries: the seeds, the leads every member reached and, for
    each of ``SPREAD_SCORES`` (of the state's mean over fields, and of each field), its spread over the seeds."""
    length = min(len(summary["lead_steps"]) for summary in summaries)
    result = {"seeds": len(summaries), "lead_steps": summaries[0]["lead_steps"][:length],
              **{name: spread_over_seeds([summary[name][:length] for summary in summaries]) for name in SPREAD_SCORES}}
    fields = summaries[0].get("per_variable") or {}
    if fields:
        result["per_variable"] = {field: {name: spread_over_seeds([s["per_variable"][field][name][:length]
                                                                    for s in summaries]) for name in SPREAD_SCORES}
                                  for field in fields}
    return result
