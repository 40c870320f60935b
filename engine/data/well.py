"""The Well's HDF5 files (PolymathicAI's collection of physics simulations) opened as our datasets.

A file of The Well's layout (the_well's ``docs/data_format.md``: ``dimensions``, ``boundary_conditions``,
``t0_fields`` scalars, ``t1_fields`` vectors, ``t2_fields`` tensors, arrays (trajectory, time, d₀, d₁, …)) whose grid
is 2-D, cartesian, square, even and periodic on both axes becomes a dataset of ``(trajectory, time, y, x)`` fields:
one variable per scalar field and per component of a vector or tensor field, named as the_well names them
(``velocity_x``, ``velocity_y``, ``stress_xy``), with the file's time coordinate, grid coordinates and simulation
parameters. Fields that do not vary over both trajectories and time (coefficients, constants) are not part of a
state and are listed in the ``skipped_fields`` attr. Anything else is refused in one line that says why.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import h5py
import numpy as np
import xarray as xr

from engine.data.fields import uniform_spacing
from engine.errors import EngineError

WELL_SUFFIXES = (".hdf5", ".h5")
FIELD_GROUPS = ("t0_fields", "t1_fields", "t2_fields")  # tensor order 0, 1, 2


def is_well_file(path: str | Path) -> bool:
    """Whether ``path`` is named like one of The Well's HDF5 files."""
    return Path(path).suffix.lower() in WELL_SUFFIXES


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _texts(values) -> list[str]:
    return [_text(value) for value in np.atleast_1d(values)]


def read_well(path: str | Path) -> xr.Dataset:
    """The file at ``path`` as a dataset in memory (see the module doc), or an ``EngineError`` saying why not."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as file:
            return _dataset(file, path.name)
    except OSError as err:
        raise EngineError(f"{path.name}: not a readable HDF5 file ({err})") from None
    except KeyError as err:
        raise EngineError(f"{path.name}: not in The Well's layout: {err.args[0]} is missing") from None


def _dataset(file: h5py.File, where: str) -> xr.Dataset:
    dims = _spatial_dims(file, where)
    _check_periodic(file, dims, where)
    coords = {name: np.asarray(file["dimensions"][name][...], dtype=float) for name in dims}
    sizes = [coords[name].size for name in dims]
    if sizes[0] != sizes[1] or sizes[0] % 2 or sizes[0] < 4:
        raise EngineError(f"{where}: its grid is {sizes[1]}×{sizes[0]}; fields must be square with an even size ≥ 4")
    fields, skipped = _fields(file, dims, where)
    time = _time(file, where)
    x, y = dims  # The Well's arrays are (…, d₀, d₁): d₀ is our x (the last axis once transposed), d₁ our y
    attrs = {key: _attribute(value) for key, value in file.attrs.items() if key not in ("n_spatial_dims",)}
    attrs.update(generator="imported", format="The Well (HDF5)", skipped_fields=", ".join(skipped) or "none")
    return xr.Dataset({name: (("trajectory", "time", "y", "x"), values) for name, values in fields.items()},
                      coords={"time": time, "y": coords[y], "x": coords[x]}, attrs=attrs)


def _attribute(value):
    """An HDF5 attribute as a netCDF-friendly value: text, or a number or list of numbers."""
    if isinstance(value, bytes | str):
        return _text(value)
    array = np.asarray(value)
    if array.dtype.kind in "SUO":
        return ", ".join(_texts(array))
    return array.item() if array.ndim == 0 else array


def _spatial_dims(file: h5py.File, where: str) -> list[str]:
    """The two spatial dims' names, after refusing other dimensionalities and grids."""
    if "n_spatial_dims" not in file.attrs or "dimensions" not in file:
        raise EngineError(f"{where}: not a file of The Well's layout (no n_spatial_dims attribute or dimensions "
                          "group)")
    count = int(file.attrs["n_spatial_dims"])
    if count != 2:
        raise EngineError(f"{where}: a {count}-D dataset; only 2-D fields on a periodic square grid can be imported")
    grid = _text(file.attrs.get("grid_type", "cartesian"))
    if grid != "cartesian":
        raise EngineError(f"{where}: its grid is {grid}; only cartesian grids (periodic on both axes) can be imported")
    return _texts(file["dimensions"].attrs["spatial_dims"])


def _check_periodic(file: h5py.File, dims: list[str], where: str) -> None:
    """Refuse a file whose boundary conditions are not periodic on both axes (or not stated)."""
    kinds: dict[str, set[str]] = {name: set() for name in dims}
    for condition in file.get("boundary_conditions", {}).values():
        for name in _texts(condition.attrs["associated_dims"]):
            kinds.setdefault(name, set()).add(_text(condition.attrs["bc_type"]).lower())
    for name in dims:
        if not kinds[name]:
            raise EngineError(f"{where}: no boundary condition is stated for its {name} axis; only grids periodic on "
                              "both axes can be imported")
        if kinds[name] != {"periodic"}:
            raise EngineError(f"{where}: its {name} axis is {', '.join(sorted(kinds[name]))}, not periodic; only "
                              "grids periodic on both axes can be imported (our solvers, spectra and networks wrap "
                              "around)")


def _fields(file: h5py.File, dims: list[str], where: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """Every component of every field that varies over trajectories and time, as (trajectory, time, y, x) float32,
    and the names of the fields left out."""
    fields, skipped = {}, []
    for order, group in enumerate(FIELD_GROUPS):
        if group not in file:
            continue
        for name in _texts(file[group].attrs.get("field_names", [])):
            data = file[group][name]
            varying = bool(data.attrs.get("time_varying", True)) and bool(data.attrs.get("sample_varying", True))
            if not varying or not np.all(data.attrs.get("dim_varying", True)):
                skipped.append(name)
                continue
            values = np.asarray(data[...], dtype=np.float32)
            if values.ndim != 4 + order:
                raise EngineError(f"{where}: {group}/{name} has shape {values.shape}; expected (trajectory, time, "
                                  f"{', '.join(dims)}{', components' * order})")
            for components in itertools.product(range(2), repeat=order):
                suffix = "".join(dims[c] for c in components)
                fields[f"{name}_{suffix}" if suffix else name] = values[(..., *components)].transpose(0, 1, 3, 2)
    if not fields:
        raise EngineError(f"{where}: no field varies over trajectories and time"
                          + (f" (only {', '.join(skipped)})" if skipped else ""))
    return fields, skipped


def _time(file: h5py.File, where: str) -> np.ndarray:
    """The snapshot times, one axis for every trajectory (a time axis that differs between trajectories is
    refused), uniformly spaced."""
    time = np.asarray(file["dimensions"]["time"][...], dtype=float)
    if time.ndim == 2:
        if not np.allclose(time, time[:1]):
            raise EngineError(f"{where}: its trajectories are saved at different times; import files with one time "
                              "axis")
        time = time[0]
    if time.size > 1:
        uniform_spacing(time, where)
    return time
