"""Resumable solver runs: advance a state one save interval at a time, keep the snapshots after the spin-up, and
keep the run's state in a file so that an interrupted run (any exception, Ctrl-C included) resumes bit-exactly.
Shared by the Kolmogorov, QG and Allen–Cahn solvers."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import param
import torch

from engine.checkpoints import save_checkpoint
from engine.config import options
from engine.data.store import parameter_digest
from engine.errors import EngineError

Tensor = torch.Tensor


def load_run_state(path: Path, config: param.Parameterized, device) -> dict | None:
    """The state of an interrupted run of the same parameters, or None when there is none."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises several types for a truncated or foreign file
        raise EngineError(f"{path.name} (an interrupted run's state) is unreadable ({type(err).__name__}): delete it "
                          "to start the run over") from None
    if not isinstance(state, dict) or state.get("digest") != parameter_digest(options(config)):
        raise EngineError(f"{path.name} holds an interrupted run with other parameters: delete it or use another --out")
    if not {"done", "state", "saved"} <= state.keys():
        raise EngineError(f"{path.name} holds an interrupted run of an older version: delete it to start over")
    return state


def saved_coords(config: param.Parameterized, trajectories, *, side: float = 2 * math.pi,
                 length: dict | None = None, time_units: str = "1") -> dict:
    """Coordinates of a ``run_with_saves`` dataset: ``trajectories`` (their indices in the seeded batch), the save
    times after the spin-up, and the n×n grid on [0, side)² with the ``length`` attrs."""
    coord = np.arange(config.size) * (side / config.size)
    times = config.spin_up + config.save_interval * (1 + np.arange(config.snapshots))
    length = length or {"units": "1", "long_name": "position on [0, 2π)"}
    return {"trajectory": np.asarray(trajectories), "time": ("time", times, {"units": time_units}),
            "y": ("y", coord, length), "x": ("x", coord, length)}


def grid_snapshot(state: Tensor, n: int) -> Tensor:
    """A spectral state (rfft2 over its last two dims) as float32 fields on the n×n grid, on the CPU."""
    return torch.fft.irfft2(state, s=(n, n)).float().cpu()


def run_with_saves(*, state: Tensor, advance: Callable[[Tensor, int], Tensor], speed: Callable[[Tensor, int], float],
                   config: param.Parameterized, device, callback: Callable[[dict], None] | None = None,
                   state_path: str | Path | None = None, state_every_seconds: float = 20.0) -> Tensor:
    """Apply ``advance(state, save)`` (one save interval; ``save`` counts from 0, so a stochastic solver can seed its
    noise by it) for ``config.spin_up`` and then ``config.snapshots`` save intervals, and return the snapshots
    (``grid_snapshot`` at ``config.size``) stacked on dim 1. ``speed(state, save)`` is the one host sync per save: it
    returns the largest speed (reported to ``callback``) and raises when the run must stop. With ``state_path`` the
    state is kept there every ``state_every_seconds`` and on any exception, and a run of the same ``config`` resumes
    from it."""
    spin_up_saves, snapshots = math.ceil(config.spin_up / config.save_interval), config.snapshots
    total, saved, start = spin_up_saves + snapshots, [], 0
    state_path = Path(state_path) if state_path is not None else None
    kept = load_run_state(state_path, config, device) if state_path is not None else None
    if kept is not None:
        state, start = kept["state"], kept["done"]
        saved = list(kept["saved"].unbind(1)) if kept["saved"].numel() else []
        if callback is not None:
            callback({"kind": "resumed", "step": start, "steps": total})
    done, state_done, last_write = start, state, time.monotonic()

    def keep_state():
        if state_path is not None and done > start:
            save_checkpoint({"digest": parameter_digest(options(config)), "done": done, "state": state_done,
                             "saved": torch.stack(saved, 1) if saved else torch.empty(0)}, state_path)

    try:
        for outer in range(start, total):
            state = advance(state, outer)
            fastest = speed(state, outer + 1)
            if outer >= spin_up_saves:
                saved.append(grid_snapshot(state, config.size))
            done, state_done = outer + 1, state
            if state_path is not None and time.monotonic() - last_write > state_every_seconds:
                keep_state()
                last_write = time.monotonic()
            if callback is not None:
                callback({"kind": "progress", "step": done, "steps": total, "max_velocity": fastest})
    except BaseException:
        keep_state()
        raise
    return torch.stack(saved, 1)
