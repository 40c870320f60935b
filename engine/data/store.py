"""The data folder: ``DataStore`` confines every name to one folder (``$EMULATOR_STUDIO_DATA``, else
``~/.cache/emulator-studio``), lists what it holds (skipping, and naming, what it cannot read), describes each
entry once per file version, imports a user's file, and says where a command may write. The files themselves are
``engine.data.io``'s, their field variables ``engine.data.fields``'s.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr

import engine
from engine.data.fields import check_fields, grid_variables, stored_spectrum, uniform_spacing
from engine.data.io import SUFFIXES, open_dataset, write_dataset
from engine.data.well import is_well_file, read_well
from engine.devices import resolve_device
from engine.errors import EngineError
from engine.files import RESERVED, check_writable, remove_stale_temporaries, walk
from engine.spectral import isotropic_modal_spectrum

SPECTRUM_ATTRS = {
    "long_name": "shell-mean modal variance",
    "description": "mean over modes with round(|k|) = wavenumber of |fft2(field, norm='forward')|^2, averaged over "
                   "samples",
}
OUTPUT_FOLDERS = ("rollouts", "superres", "samples")  # results written by jobs: listed apart from the datasets
GENERATOR_TITLES = {"engine.data.grf": "GRF", "engine.data.kolmogorov": "Kolmogorov", "engine.data.qg": "QG jet",
                    "engine.data.lorenz96": "Lorenz-96", "engine.data.allen_cahn": "Allen–Cahn"}
ASSETS = Path(__file__).resolve().parents[2] / "assets"


def spectrum_variable(fields: torch.Tensor, variable: str) -> xr.DataArray:
    """The dataset's spectrum of its field ``variable`` as a DataArray over integer wavenumbers 0..N/2."""
    spectrum = isotropic_modal_spectrum(fields).numpy()
    return xr.DataArray(spectrum, dims=("wavenumber",), coords={"wavenumber": np.arange(spectrum.shape[0])},
                        attrs={**SPECTRUM_ATTRS, "variable": variable})


def provenance(generator: str, **parameters) -> dict:
    """netCDF-safe attrs recording what made a file (None becomes the string 'none', a bool 0 or 1, and a device
    asked for as ``auto`` the device that it is here: the one that ran)."""
    if parameters.get("device") == "auto":
        parameters["device"] = str(resolve_device("auto"))
    attrs = {"generator": generator, "engine_version": engine.__version__}
    attrs.update({k: "none" if v is None else int(v) if isinstance(v, bool) else v for k, v in parameters.items()})
    return attrs


def data_dir() -> Path:
    """The data folder: ``$EMULATOR_STUDIO_DATA``, else ``~/.cache/emulator-studio``."""
    root = os.environ.get("EMULATOR_STUDIO_DATA") or Path.home() / ".cache" / "emulator-studio"
    path = Path(root).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


# parameters added after data were named by their digests: left out at these defaults, so the earlier names hold
LATER_DEFAULTS = {"scheme": "cn_rk4"}


def parameter_digest(parameters: dict) -> str:
    """8 hex digits naming a parameter set (the device does not change the data; ``LATER_DEFAULTS`` are left out)."""
    kept = {k: v for k, v in sorted(parameters.items())
            if k != "device" and not (k in LATER_DEFAULTS and v == LATER_DEFAULTS[k])}
    return hashlib.sha1(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:8]


_DESCRIBED: dict[tuple, dict] = {}  # describe() per file version, for this process


def is_output(name: str) -> bool:
    """Whether ``name`` is a result written by a job (it lies in one of ``OUTPUT_FOLDERS``)."""
    return Path(name).parts[0] in OUTPUT_FOLDERS


def dataset_title(info: dict) -> str:
    """A readable title from a description: kind, grid, how many fields or trajectories × snapshots, Δt, e.g.
    ``Kolmogorov 64² · 4 × 50 snapshots · Δt 0.5 (kolmogorov-64-b5a5fa4e.nc)``."""
    if "error" in info:
        return f"{info['name']} (unreadable)"
    kind = GENERATOR_TITLES.get(info.get("generator"), "imported")
    main = next((sizes for var, sizes in info.get("variables", {}).items() if var != "spectrum"), {})
    dims = list(main)
    if dims[-2:] == ["y", "x"]:
        grid, leading = f"{main['x']}²", dims[:-2]
    else:
        grid, leading = (f"K = {main[dims[-1]]}" if dims else ""), dims[:-1]
    if "time" in leading:
        others = [main[d] for d in leading if d != "time"]
        runs = f"{' × '.join(map(str, others))} trajectories × " if others else ""
        count = f"{runs}{main['time']} snapshots"
    else:
        count = f"{int(np.prod([main[d] for d in leading]))} fields" if leading else "1 field"
    parts = [f"{kind} {grid}".strip(), count]
    if info.get("dt"):
        parts.append(f"Δt {info['dt']:.3g}")
    if info.get("lam"):
        parts.append(f"λ {info['lam']:g}")
    return " · ".join(parts) + f" ({Path(info['name']).name})"


@dataclass
class Listing:
    """The readable entries of a data folder, and the skipped ones as (name, reason)."""

    entries: list[dict]
    skipped: list[tuple[str, str]]

    def warning(self) -> str:
        """One line naming every skipped entry with its reason ('' when none was)."""
        if not self.skipped:
            return ""
        return f"skipped {len(self.skipped)} unreadable entr{'y' if len(self.skipped) == 1 else 'ies'}: " + "; ".join(
            f"{name} ({reason.removeprefix(name + ': ')})" for name, reason in self.skipped)


class DataStore:
    """One data folder: names resolve inside it and nowhere else."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).expanduser().resolve() if root else data_dir()
        if self.root.exists() and not self.root.is_dir():
            raise EngineError(f"the data folder {self.root} is a file; --data-dir names a folder")
        self.root.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.root)

    def path(self, name: str | Path) -> Path:
        """The file for ``name`` (relative to the folder, or absolute inside it); anything else is refused, and so
        are the names kept for the studio's own temporaries and locks (``engine.files.RESERVED``)."""
        candidate = Path(name).expanduser()
        reserved = next((part for part in candidate.parts if part in RESERVED), None)
        if reserved:
            raise EngineError(f"{name}: {reserved} is kept for the studio's own files; choose another name")
        try:
            resolved = (candidate if candidate.is_absolute() else self.root / candidate).resolve()
        except (RuntimeError, OSError):  # Python < 3.13 raises RuntimeError for a loop, later ones OSError
            raise EngineError(f"{name}: a symbolic link that loops back on itself; remove it or point it at a "
                              "file") from None
        if resolved != self.root and self.root not in resolved.parents:
            raise EngineError(f"{name}: outside the data folder {self.root}; use `python -m engine data import` "
                              "to copy a file in, or --data-dir to choose another folder")
        return resolved

    def names(self) -> list[str]:
        """Dataset files in the folder (netCDF and zarr), relative names, sorted; hidden entries (the studio's
        temporaries among them) and the insides of zarr stores are not names."""
        found = []
        for folder, folders, files in walk(self.root):
            named = [name for name in [*folders, *files] if Path(name).suffix in SUFFIXES and not name.startswith(".")]
            found += [str((folder / name).relative_to(self.root)) for name in named]
            folders[:] = [name for name in folders if not name.startswith(".") and not name.endswith(".zarr")]
        return sorted(found)

    def open(self, name: str) -> xr.Dataset:
        """Open a dataset lazily (values are read when used)."""
        return open_dataset(self.path(name))

    def describe(self, name: str) -> dict:
        """Name, title, generator, variables with dims and sizes, snapshot spacing ``dt`` and file size in MiB; an
        entry that cannot be described (a link out of the folder, a dangling or looping link, an unreadable file,
        a folder that is no zarr store) gets an ``error`` instead of raising. Cached per file version (path, size,
        modification time)."""
        try:
            path = self.path(name)
            stats = [p.stat() for p in path.rglob("*")] if path.is_dir() else [path.stat()]
        except (EngineError, OSError) as err:
            dangling = isinstance(err, FileNotFoundError) and (self.root / name).is_symlink()
            reason = (str(err) if isinstance(err, EngineError) else "a link to a file that does not exist" if dangling
                      else f"cannot be read ({type(err).__name__})")
            return {"name": name, "title": name, "mib": 0.0, "error": reason}
        version = (str(path), sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0))
        if version not in _DESCRIBED:
            _DESCRIBED[version] = self._read_description(name, version[1])
        return dict(_DESCRIBED[version])

    def _read_description(self, name: str, size: int) -> dict:
        info = {"name": name, "mib": round(size / 2**20, 2)}
        try:
            with self.open(name) as ds:
                info["generator"] = ds.attrs.get("generator", "imported")
                info["variables"] = {str(v): dict(ds[v].sizes) for v in ds.data_vars}
                info["lam"] = float(ds.attrs["lam"]) if "lam" in ds.attrs else None
                times = np.asarray(ds["time"].values, dtype=float) if "time" in ds.coords else np.zeros(0)
                info["dt"] = float(np.median(np.diff(times))) if times.size > 1 else None
        except EngineError as err:
            info["error"] = str(err)
        info["title"] = dataset_title(info)
        return info

    def scan(self) -> Listing:
        """Every name described: the readable entries, and those skipped with the reason (no entry, whatever it
        is, takes the listing down)."""
        described = [self.describe(name) for name in self.names()]
        return Listing([entry for entry in described if "error" not in entry],
                       [(entry["name"], entry["error"]) for entry in described if "error" in entry])

    def list(self) -> list[dict]:
        """The readable entries of the folder."""
        return self.scan().entries

    def datasets(self) -> list[dict]:
        """The entries that are data (not results written by jobs into ``OUTPUT_FOLDERS``)."""
        return [entry for entry in self.list() if not is_output(entry["name"])]

    def outputs(self) -> list[dict]:
        """Results written by jobs: rollouts, super-resolution results, samples."""
        return [entry for entry in self.list() if is_output(entry["name"])]

    def import_file(self, source: str | Path, name: str | None = None, variable: str | None = None) -> Path:
        """Validate a user's netCDF/zarr file, or a 2-D periodic file of The Well (``engine.data.well``), and copy it
        into the folder (netCDF unless ``name`` ends in .zarr); every field variable on the grid is checked."""
        source = Path(source).expanduser()
        name = name or (source.stem + (".zarr" if source.suffix == ".zarr" else ".nc"))
        target = self.path(name)
        if target.exists():
            raise EngineError(f"{name} already exists in {self.root}; choose another --name")
        with _opened(source) as ds:
            check_writable(target, need=ds.nbytes, what=name)
            chosen, values = check_fields(ds, variable, source.name)
            for other in grid_variables(ds):
                check_fields(ds, other, source.name)
            if "spectrum" in ds:
                stored_spectrum(ds, source.name)
            if "time" in ds.coords and ds["time"].size > 1:
                uniform_spacing(np.asarray(ds["time"].values, dtype=float), source.name)
            out = ds.load()
            if "spectrum" not in out:
                out["spectrum"] = spectrum_variable(torch.from_numpy(values), chosen)
            out.attrs.setdefault("generator", "imported")
            out.attrs.update(imported_from=source.name, field_variable=chosen)
            return write_dataset(out, target)

    def output_path(self, out: str, *, inputs: tuple = (), overwrite: bool = False, need: float = 0.0) -> Path:
        """Where a command writes ``out``: never onto one of its ``inputs``, onto an existing file only with
        ``overwrite``, and only into a writable folder with ``need`` bytes free (checked before any work starts)."""
        path = self.path(out)
        if any(source is not None and path == self.path(source) for source in inputs):
            raise EngineError(f"--out {out} is also this command's input; choose another name (an output never "
                              "replaces an input)")
        if path.is_dir() and path.suffix != ".zarr":
            raise EngineError(f"--out {out} is a folder; name a file (.nc or .zarr) inside the data folder")
        if path.exists() and not overwrite:
            raise EngineError(f"{out} already exists in {self.root}; pass --overwrite to replace it, or choose "
                              "another --out")
        check_writable(path, need=need, what=out)
        return path

    def partial_path(self, name: str) -> Path:
        """Where an interrupted generation of ``name`` keeps its state."""
        path = self.path(name)
        return path.with_name(f".{path.name}.partial.pt")


def _opened(source: Path):
    """A file to import as a dataset: The Well's HDF5 read into memory, else netCDF or zarr opened lazily."""
    return contextlib.nullcontext(read_well(source)) if is_well_file(source) else open_dataset(source)
