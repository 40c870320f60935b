"""Field variables and their checks: a field is a data variable whose last two dims are ``(y, x)`` on a square,
even, periodic grid, real and finite; ``load_fields`` reads one as a tensor with the dataset's stored spectrum
(the shell-mean modal variance ``E|x̂_k|²``, ``engine.spectral`` conventions) that matched noise and the analytic
model use."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from engine.data.io import open_dataset
from engine.errors import EngineError
from engine.spectral import isotropic_cross_spectrum, isotropic_modal_spectrum, shell_counts

MAX_MAGNITUDE = 1e15  # larger field values overflow float32 variances (x² > 3.4e38 from |x| ≈ 1.8e19)


@dataclass
class FieldData:
    """Fields flattened to (samples, n, n) float32, the stored spectrum (N/2 + 1,), the file's attrs, and the file's
    name (provenance: what an output was made from)."""

    fields: torch.Tensor
    spectrum: torch.Tensor
    variable: str
    attrs: dict
    source: str = ""

    @property
    def n(self) -> int:
        return self.fields.shape[-1]


GRID = ("y", "x")  # the last two dims of every field variable


def on_grid(dims) -> bool:
    """Whether ``dims`` (a variable's dims, or the names of its sizes) end in the 2-D grid ``(y, x)``."""
    return tuple(dims)[-2:] == GRID


def grid_variables(ds: xr.Dataset) -> list[str]:
    """The dataset's field variables, dims (…, y, x), in file order."""
    return [str(name) for name, da in ds.data_vars.items() if on_grid(da.dims)]


def field_variable(ds: xr.Dataset, variable: str | None, where: str) -> str:
    """The variable to use: ``variable`` if given and valid, else the first with dims (..., y, x)."""
    if variable is not None:
        if variable not in ds.data_vars:
            names = ", ".join(map(str, ds.data_vars)) or "none"
            raise EngineError(f"{where}: no variable {variable!r}; it has {names}")
        if not on_grid(ds[variable].dims):
            raise EngineError(f"{where}: variable {variable!r} has dims {ds[variable].dims}; the last two must be (y, "
                              f"x)")
        return variable
    candidates = grid_variables(ds)
    if not candidates:
        raise EngineError(f"{where}: no variable with dims ending in (y, x); found "
                          + (", ".join(f"{n}{tuple(da.dims)}" for n, da in ds.data_vars.items()) or "no variables"))
    return candidates[0]


def state_variables(ds: xr.Dataset, variables, where: str) -> list[str]:
    """The variables one state is made of (its channels): ``variables`` (a name or names; each checked, all on
    one grid), else every field variable with the same dims and sizes as the first, in file order."""
    if isinstance(variables, str):
        variables = [variables]
    if not variables:
        first = field_variable(ds, None, where)
        return [name for name in grid_variables(ds) if ds[name].sizes == ds[first].sizes]
    if len(set(variables)) < len(variables):
        raise EngineError(f"{where}: a variable is named twice in {', '.join(variables)}")
    missing = [name for name in variables if name not in ds.data_vars]
    if missing:
        names = ", ".join(map(str, ds.data_vars)) or "none"
        raise EngineError(f"{where}: no variable {', '.join(missing)}; it has {names}")
    names = [field_variable(ds, name, where) for name in variables]
    sizes = {name: dict(ds[name].sizes) for name in names}
    if any(size != sizes[names[0]] for size in sizes.values()):
        raise EngineError(f"{where}: the variables of one state must share their dims and sizes; "
                          + ", ".join(f"{name} {size}" for name, size in sizes.items()))
    return names


def check_fields(ds: xr.Dataset, variable: str | None, where: str) -> tuple[str, np.ndarray]:
    """Validate a field variable (square, even size, finite) and return its values as (samples, n, n) float32."""
    name = field_variable(ds, variable, where)
    da = ds[name]
    ny, nx = da.sizes["y"], da.sizes["x"]
    if ny != nx or nx % 2 or nx < 4:
        raise EngineError(f"{where}: {name} is {ny}×{nx}; fields must be square with an even size ≥ 4 (periodic grid)")
    if np.iscomplexobj(da.values):
        raise EngineError(f"{where}: {name} holds complex values; fields must be real (store the real and the "
                          "imaginary part as two variables)")
    try:
        values = np.asarray(da.values, dtype=np.float32).reshape(-1, ny, nx)
    except (TypeError, ValueError):
        raise EngineError(f"{where}: {name} has dtype {da.dtype}; fields must be real numbers") from None
    if values.shape[0] == 0:
        raise EngineError(f"{where}: {name} holds no fields")
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).any(axis=(1, 2)).sum())
        raise EngineError(f"{where}: {name} has NaN or infinite values in {bad} of {values.shape[0]} fields")
    largest = float(np.abs(values).max())
    if largest > MAX_MAGNITUDE:
        raise EngineError(f"{where}: {name} has values up to {largest:.3g}, too large to square in float32; rescale "
                          f"the field (|x| ≤ {MAX_MAGNITUDE:g})")
    return name, values


def stored_spectrum(ds: xr.Dataset, where: str) -> torch.Tensor:
    """The dataset's stored ``spectrum``, checked finite and non-negative (matched noise and the exact drift use
    it)."""
    values = np.asarray(ds["spectrum"].values, dtype=np.float64)
    if not np.isfinite(values).all() or (values < 0).any():
        raise EngineError(f"{where}: its stored spectrum has NaN, infinite or negative values; delete the `spectrum` "
                          "variable (it is then computed from the fields) or fix it")
    return torch.from_numpy(values)


def holds_spectrum_of(ds: xr.Dataset, variable: str) -> bool:
    """Whether the dataset's stored ``spectrum`` is ``variable``'s: the one its ``variable`` attr names, else (files
    written before it was recorded) the first field variable's, on the variable's grid."""
    if "spectrum" not in ds or ds["spectrum"].size != ds[variable].sizes["x"] // 2 + 1:
        return False
    return ds["spectrum"].attrs.get("variable", (grid_variables(ds) or [None])[0]) == variable


def load_fields(path: str | Path, variable: str | None = None) -> FieldData:
    """Open a field dataset, check it (dims (..., y, x), square, even size, finite) and load it as a tensor."""
    path = Path(path)
    with open_dataset(path) as ds:
        name, values = check_fields(ds, variable, path.name)
        fields = torch.from_numpy(values)
        spectrum = stored_spectrum(ds, path.name) if holds_spectrum_of(ds, name) else isotropic_modal_spectrum(fields)
        return FieldData(fields, spectrum, name, dict(ds.attrs), source=path.name)


class FieldStates:
    """What states of ``variables`` on an n-point grid say of themselves: the grid size and the number of fields."""

    fields: torch.Tensor
    variables: tuple[str, ...]

    @property
    def n(self) -> int:
        return self.fields.shape[-1]

    @property
    def channels(self) -> int:
        return len(self.variables)


@dataclass
class StateFieldData(FieldStates):
    """States of C field variables (samples, C, n, n) float32, their shell cross-spectra (C, C, N/2 + 1) float64
    (``engine.spectral.isotropic_cross_spectrum``: matched noise and the exact drift of correlated fields use it),
    the variables' names and attrs (units), the file's attrs and name."""

    fields: torch.Tensor
    cross_spectrum: torch.Tensor
    variables: tuple[str, ...]
    variable_attrs: dict
    attrs: dict
    source: str = ""

    @property
    def variable(self) -> str:
        """The first field: the one a view of one field shows (``Trajectories.variable`` likewise)."""
        return self.variables[0]


def load_state_fields(path: str | Path, variables: list[str]) -> StateFieldData:
    """Open a dataset and load the fields of ``variables`` (each checked as ``check_fields`` does, all on one grid)
    as states (samples, C, n, n), the snapshots of one variable matched one to one with the others'."""
    path = Path(path)
    with open_dataset(path) as ds:
        names = state_variables(ds, variables, path.name)
        fields = torch.from_numpy(np.stack([check_fields(ds, name, path.name)[1] for name in names], 1))
        return StateFieldData(fields, isotropic_cross_spectrum(fields), tuple(names),
                              {name: dict(ds[name].attrs) for name in names}, dict(ds.attrs), source=path.name)


def generation_fields(path: str | Path, variables: str | list[str] | None = None) -> FieldData | StateFieldData:
    """The fields a generator learns or samples: ``variables`` (default: every field variable on the first one's
    grid); one variable as ``FieldData`` (with the dataset's stored spectrum), several as ``StateFieldData``."""
    path = Path(path)
    with open_dataset(path) as ds:
        names = state_variables(ds, variables, path.name)
    return load_fields(path, names[0]) if len(names) == 1 else load_state_fields(path, names)


def field_std(ds: xr.Dataset, variable: str) -> float:
    """A field variable's pixel standard deviation, from the stored spectrum when it is this variable's (pixel
    variance = Σ_k modal variance = Σ_shells count_k · spectrum_k), else from its first 8 fields."""
    if holds_spectrum_of(ds, variable):
        counts = shell_counts(ds.sizes["x"]).numpy()
        return float(np.sqrt((ds["spectrum"].values * counts)[1:].sum()))
    return float(ds[variable].isel({d: slice(0, 8) for d in ds[variable].dims[:-2]}).std())


def uniform_spacing(times: np.ndarray, where: str) -> float:
    """The snapshot spacing Δt of a time coordinate whose steps all agree (to 0.1%); irregular gaps are refused,
    since every one-step model and every "lead step" assumes one Δt."""
    steps = np.diff(times)
    dt = float(np.median(steps))
    if not dt > 0 or np.abs(steps - dt).max() > 1e-3 * abs(dt):
        raise EngineError(f"{where}: the time axis is not uniform (steps from {steps.min():g} to {steps.max():g}); "
                          "resample it to one Δt")
    return dt

