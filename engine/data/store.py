"""xarray I/O for field datasets: atomic netCDF writes and validated loading.

A field dataset holds one data variable whose last two dims are ``(y, x)`` on a square periodic grid,
plus ``spectrum(wavenumber)``: the shell-mean modal variance ``E|x̂_k|²`` (``engine.spectral``
conventions) that matched noise and the analytic model use.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr

import engine
from engine.errors import EngineError
from engine.spectral import isotropic_modal_spectrum

SPECTRUM_ATTRS = {
    "long_name": "shell-mean modal variance",
    "description": "mean over modes with round(|k|) = wavenumber of |fft2(field, norm='forward')|^2, averaged over samples",
}


def spectrum_variable(fields: torch.Tensor) -> xr.DataArray:
    """The dataset's spectrum as a DataArray over integer wavenumbers 0..N/2."""
    spectrum = isotropic_modal_spectrum(fields).numpy()
    return xr.DataArray(spectrum, dims=("wavenumber",), coords={"wavenumber": np.arange(spectrum.shape[0])},
                        attrs=SPECTRUM_ATTRS)


def provenance(generator: str, **parameters) -> dict:
    """netCDF-safe attrs recording what made a file (None becomes the string 'none')."""
    attrs = {"generator": generator, "engine_version": engine.__version__}
    attrs.update({k: ("none" if v is None else v) for k, v in parameters.items()})
    return attrs


def write_netcdf(ds: xr.Dataset, path: str | Path) -> Path:
    """Write atomically: to a temporary name beside the target, then rename (no half-written files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        ds.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@dataclass
class FieldData:
    """Fields flattened to (samples, n, n) float32, the stored spectrum (N/2 + 1,), and the file's attrs."""

    fields: torch.Tensor
    spectrum: torch.Tensor
    variable: str
    attrs: dict

    @property
    def n(self) -> int:
        return self.fields.shape[-1]


def _field_variable(ds: xr.Dataset, variable: str | None, path: Path) -> str:
    candidates = [name for name, da in ds.data_vars.items() if da.dims[-2:] == ("y", "x")]
    if variable is not None:
        if variable not in ds.data_vars:
            raise EngineError(f"{path}: no variable {variable!r}; it has {', '.join(map(str, ds.data_vars)) or 'none'}")
        if ds[variable].dims[-2:] != ("y", "x"):
            raise EngineError(f"{path}: variable {variable!r} has dims {ds[variable].dims}; the last two must be (y, x)")
        return variable
    if not candidates:
        raise EngineError(f"{path}: no variable with dims ending in (y, x); found "
                          + ", ".join(f"{n}{tuple(da.dims)}" for n, da in ds.data_vars.items()))
    return candidates[0]


def load_fields(path: str | Path, variable: str | None = None) -> FieldData:
    """Open a field dataset, check it (dims (..., y, x), square, even size, finite) and load it as a tensor."""
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"no such data file: {path}")
    try:
        ds = xr.open_dataset(path, engine="h5netcdf")
    except (OSError, ValueError) as err:
        raise EngineError(f"{path}: not a readable netCDF file ({err})") from None
    with ds:
        name = _field_variable(ds, variable, path)
        da = ds[name]
        ny, nx = da.sizes["y"], da.sizes["x"]
        if ny != nx or nx % 2:
            raise EngineError(f"{path}: {name} is {ny}×{nx}; fields must be square with an even size")
        values = np.asarray(da.values, dtype=np.float32).reshape(-1, ny, nx)
        if not np.isfinite(values).all():
            bad = int((~np.isfinite(values)).any(axis=(1, 2)).sum())
            raise EngineError(f"{path}: {name} has NaN or infinite values in {bad} of {values.shape[0]} fields")
        fields = torch.from_numpy(values)
        spectrum = (torch.from_numpy(ds["spectrum"].values.astype(np.float64)) if "spectrum" in ds
                    else isotropic_modal_spectrum(fields))
        return FieldData(fields, spectrum, name, dict(ds.attrs))


def data_dir() -> Path:
    """The data folder: ``$EMULATOR_STUDIO_DATA``, else ``~/.cache/emulator-studio``."""
    root = os.environ.get("EMULATOR_STUDIO_DATA") or Path.home() / ".cache" / "emulator-studio"
    path = Path(root).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path

