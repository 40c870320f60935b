"""Trajectories on disk as tensors: loading and normalizing them, their snapshot spacing Δt, and which datasets
a one-step model (trained on snapshots Δt apart on an n-point grid) applies to.

Fields are ``(trajectory, time, y, x)`` (or ``(time, y, x)``); 1-D series such as Lorenz-96 are
``(trajectory, time, k)``. See docs/architecture.md for where this sits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.data.fields import (
    FieldStates,
    check_fields,
    grid_variables,
    on_grid,
    state_variables,
    uniform_spacing,
)
from engine.data.io import open_dataset
from engine.data.store import DataStore
from engine.errors import EngineError

Tensor = torch.Tensor


@dataclass
class Trajectories(FieldStates):
    """Normalized trajectories ``(trajectory, time, *state)`` float32 with the normalization and the time step.

    A state is ``(n, n)`` for one variable and ``(C, n, n)`` for C variables (channel c is ``variables[c]``), each
    normalized to zero mean and unit std on its own: ``mean`` and ``std`` are floats, or (C, 1, 1) tensors."""

    fields: Tensor
    mean: float | Tensor
    std: float | Tensor
    dt: float
    variable: str  # the first variable (the only one of a one-field state)
    source: str = ""
    variables: tuple[str, ...] = ()
    units: tuple[str, ...] = ()  # each variable's units attr ("" where it has none)
    space: dict = field(default_factory=dict)  # the grid's coordinates as stored: {"y": (values, attrs), "x": …}

    def __post_init__(self):
        self.variables = tuple(self.variables) or (self.variable,)

    def denormalize(self, x: Tensor) -> Tensor:
        return x * self.std + self.mean

    def normalization(self) -> dict:
        """The per-variable mean and std as plain numbers (floats for one variable, lists for several)."""
        return {"mean": _plain(self.mean), "std": _plain(self.std)}


def _plain(value: float | Tensor) -> float | list[float]:
    return value.flatten().tolist() if isinstance(value, Tensor) else float(value)


def per_channel(values: float | list[float], device=None) -> float | Tensor:
    """A recorded normalization back as numbers to broadcast over a state: a float, or a (C, 1, 1) tensor."""
    if isinstance(values, (list, tuple)):
        return torch.tensor(values, dtype=torch.float32, device=device).reshape(-1, 1, 1)
    return float(values)


def load_trajectories(path: str | Path, variables: str | list[str] | None = None, min_length: int = 2) -> Trajectories:
    """Read ``(trajectory, time, y, x)`` (or ``(time, y, x)``) fields of ``variables`` (default: every field variable
    on the first one's grid, ``engine.data.fields.state_variables``), validated, each normalized to zero mean and
    unit std."""
    path = Path(path)
    with open_dataset(path) as ds:
        names = state_variables(ds, variables, path.name)
        blocks = [_trajectory_values(ds, name, path.name) for name in names]
        units = tuple(str(ds[name].attrs.get("units", "")) for name in names)
        space = {dim: (np.asarray(ds[dim].values), dict(ds[dim].attrs)) for dim in ("y", "x") if dim in ds.coords}
        times = np.asarray(ds["time"].values, dtype=float) if "time" in ds.coords else np.arange(blocks[0].shape[1])
    if blocks[0].shape[1] < min_length:
        raise EngineError(f"{path.name}: {blocks[0].shape[1]} snapshots per trajectory; this needs at least "
                          f"{min_length}")
    for name, block in zip(names, blocks):
        if not float(block.std()) > 0:
            raise EngineError(f"{path.name}: {name} is constant; there is nothing to learn")
    if len(names) == 1:
        fields, mean, std = blocks[0], float(blocks[0].mean()), float(blocks[0].std())
    else:
        fields = torch.stack(blocks, 2)
        mean = torch.stack([block.mean() for block in blocks]).reshape(-1, 1, 1)
        std = torch.stack([block.std() for block in blocks]).reshape(-1, 1, 1)
    return Trajectories((fields - mean) / std, mean, std, snapshot_spacing(times, path.name), names[0], str(path),
                        tuple(names), units, space)


def _trajectory_values(ds, name: str, where: str) -> Tensor:
    """One field variable as checked (trajectory, time, n, n) float32 values."""
    dims = ds[name].dims
    if "time" not in dims[:-2]:
        raise EngineError(f"{where}: {name}{tuple(dims)} has no time dim; forecasting needs (…, time, y, x)")
    da = ds[name].transpose(..., "time", "y", "x")
    _, values = check_fields(da.to_dataset(), name, where)
    return torch.from_numpy(values.reshape(-1, da.sizes["time"], *values.shape[-2:]))


def snapshot_spacing(times: np.ndarray, where: str = "the data") -> float:
    """Δt between saved snapshots (1 for a single snapshot); a time axis with irregular gaps is refused."""
    return uniform_spacing(np.asarray(times, dtype=float), where) if len(times) > 1 else 1.0


def same_spacing(dt: float, other: float) -> bool:
    """Two snapshot spacings agree (to the rounding of a saved time coordinate)."""
    return math.isclose(dt, other, rel_tol=1e-3)


def check_time_step(*, trained_dt: float, data_dt: float, n: int, data_name: str, checkpoint: str,
                    store: DataStore) -> None:
    """A one-step model (``u_n → u_{n+1}``) applies only to snapshots saved at the Δt it was trained on; the error
    names the datasets in ``store`` on the same n-point grid that fit."""
    if not same_spacing(trained_dt, data_dt):
        fitting = datasets_for(store, n, trained_dt)
        raise EngineError(f"{checkpoint} was trained on snapshots Δt = {trained_dt:g} apart; {Path(data_name).name} "
                          f"is saved every {data_dt:g}: choose data saved every {trained_dt:g}"
                          + (f" ({', '.join(fitting)})" if fitting else ""))


def datasets_for(store: DataStore, n: int, dt: float) -> list[str]:
    """The datasets at the top of the folder (not results in its sub-folders) a one-step model trained on n² fields
    saved every ``dt`` applies to: (…, time, y, x) fields on that grid at that spacing; names, sorted."""
    return [name for name in store.names() if "/" not in name and dataset_fits(store, name, n, dt)]


def dataset_fits(store: DataStore, name: str, n: int, dt: float) -> bool:
    """Whether dataset ``name`` holds (…, time, y, x) fields on an n² grid saved every ``dt``."""
    try:
        with store.open(name) as ds:
            times = np.asarray(ds["time"].values) if "time" in ds.coords else np.zeros(0)
            if times.size < 2 or not np.issubdtype(times.dtype, np.number):
                return False
            spaced = same_spacing(snapshot_spacing(times), dt)
            return spaced and any(da.dims[-3:] == ("time", "y", "x") and da.shape[-1] == da.shape[-2] == n
                                  for da in ds.data_vars.values())
    except EngineError:  # unreadable files are listed (with their error) by the Data view, not here
        return False


def load_sequences(path: str | Path, variables: str | list[str] | None = None) -> Trajectories:
    """Normalized fields ``(trajectory, time, n, n)`` (``(trajectory, time, C, n, n)`` for states of several:
    ``load_trajectories``, every field by default), or ``(trajectory, time, n)`` of one 1-D variable (Lorenz-96
    ``slow``)."""
    path = Path(path)
    names = [variables] if isinstance(variables, str) else list(variables or [])
    with open_dataset(path) as ds:
        if not names:
            two_d = bool(grid_variables(ds))
        else:  # a missing variable goes to load_trajectories too, which names the ones there are
            two_d = names[0] not in ds.data_vars or on_grid(ds[names[0]].dims)
        if two_d:
            return load_trajectories(path, names or None, min_length=2)
        if len(names) > 1:
            raise EngineError(f"{path.name}: a 1-D state is one variable; name one of {', '.join(names)}")
        names = names or [n for n, da in ds.data_vars.items() if "time" in da.dims[:-1]]
        if not names:
            raise EngineError(f"{path.name}: no variable with a time dim and a spatial dim after it")
        da = ds[names[0]]
        if "time" not in da.dims[:-1]:
            raise EngineError(f"{path.name}: {names[0]}{tuple(da.dims)} needs a time dim before its spatial dim")
        space = da.dims[-1]
        da = da.transpose(..., "time", space)
        values = np.asarray(da.values, dtype=np.float32)
        times = np.asarray(ds["time"].values, dtype=float) if "time" in ds.coords else np.arange(da.sizes["time"])
    n = values.shape[-1]
    if n % 2 or n < 4:
        raise EngineError(f"{path.name}: {names[0]} has {n} points along {space}; PDD needs an even periodic size ≥ 4")
    if not np.isfinite(values).all():
        raise EngineError(f"{path.name}: {names[0]} has NaN or infinite values")
    fields = torch.from_numpy(values.reshape(-1, values.shape[-2], n))
    mean, std = float(fields.mean()), float(fields.std())
    if not std > 0:
        raise EngineError(f"{path.name}: {names[0]} is constant; there is nothing to learn")
    return Trajectories((fields - mean) / std, mean, std, snapshot_spacing(times, path.name), names[0], str(path))


def pick_sequences(fields: Tensor, count: int, frames: int) -> Tensor:
    """``count`` non-overlapping runs of ``frames`` frames, round-robin over trajectories: (count, frames, *grid)."""
    trajectories, length = fields.shape[:2]
    per_trajectory = length // frames
    if count > trajectories * per_trajectory:
        raise EngineError(f"{count} sequences of {frames} frames asked for; the data holds "
                          f"{trajectories * per_trajectory} "
                          f"({trajectories} trajectories × {length} snapshots)")
    return torch.stack([fields[i % trajectories, (i // trajectories) * frames:(i // trajectories + 1) * frames]
                        for i in range(count)])
