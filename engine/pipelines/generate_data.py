"""``data grf|kolmogorov|qg|lorenz96``: generate a dataset with our own solvers into the data folder.

The solvers are ``engine.data.grf``, ``engine.data.kolmogorov``, ``engine.data.qg`` and ``engine.data.lorenz96``;
the cached names and the resumable write are ``engine.data.catalog``. With a Dask scheduler (``engine.cluster``) the
trajectories of a Kolmogorov, QG or Lorenz-96 set are integrated as tasks, each a share of the same seeded batch, and
gathered into the file one process writes (a ``.zarr`` one share by share, as they arrive). See docs/architecture.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import param
import torch
import xarray as xr

from engine.cluster import ZarrInShares, map_parts, scheduler_address
from engine.config import GRFConfig, options
from engine.data.catalog import (
    GENERATOR_CONFIGS,
    GENERATOR_NAMES,
    TRAJECTORY_SOLVERS,
    cached_name,
    generation_bytes,
    write_generated,
)
from engine.data.fields import grid_variables
from engine.data.io import write_dataset
from engine.data.store import DataStore, spectrum_variable
from engine.devices import check_memory
from engine.errors import EngineError
from engine.pipelines.request import OVERWRITE, SCHEDULER, Request, option

MAX_TASKS = 256  # trajectories are sent in at most this many tasks
SOLVERS = {GENERATOR_NAMES[cls]: (cls, simulate) for cls, simulate in TRAJECTORY_SOLVERS.items()}


@dataclass
class DataResult:
    """The dataset's name in the data folder, and whether an existing file of the same parameters was reused."""

    name: str
    reused: bool = False


def simulate_share(*, solver: str, config: dict, first: int, stop: int) -> xr.Dataset:
    """Trajectories ``first:stop`` of the seeded batch of ``config`` (a cluster task)."""
    cls, simulate = SOLVERS[solver]
    return simulate(cls(**config), select=slice(first, stop))


def gather_trajectories(shares: list[xr.Dataset]) -> xr.Dataset:
    """One dataset from trajectory shares in order; a 2-D set's spectrum (of its first field) is recomputed over all
    of them."""
    dataset = xr.concat([share.drop_vars("spectrum", errors="ignore") for share in shares], dim="trajectory",
                        combine_attrs="override")
    if "spectrum" in shares[0]:
        first = grid_variables(dataset)[0]
        dataset["spectrum"] = spectrum_variable(torch.from_numpy(dataset[first].values), first)
    return dataset


def trajectory_shares(config: param.Parameterized) -> list[dict]:
    """The tasks of ``config``'s set: contiguous shares of its trajectories, at most MAX_TASKS of them."""
    solver = GENERATOR_NAMES[type(config)]
    count = config.trajectories
    size = math.ceil(count / min(count, MAX_TASKS))
    return [{"solver": solver, "config": options(config), "first": first, "stop": min(first + size, count)}
            for first in range(0, count, size)]


def simulate_on_cluster(config: param.Parameterized, *, address: str,
                        callback: Callable[[dict], None] | None = None) -> xr.Dataset:
    """``config``'s trajectories as tasks on the Dask cluster at ``address``, gathered in order."""
    return gather_trajectories(map_parts(simulate_share, trajectory_shares(config), address=address,
                                         progress=callback))


def stream_to_zarr(config: param.Parameterized, path: Path, *, address: str,
                   callback: Callable[[dict], None] | None = None) -> Path:
    """``config``'s trajectories as tasks on the cluster at ``address``, each share written into the zarr store
    ``path`` as it arrives (one share in memory at a time); a Kolmogorov set's spectrum, the field-weighted mean
    of the shares' spectra, is added last."""
    parts, writer = trajectory_shares(config), ZarrInShares(path, dim="trajectory", size=config.trajectories)
    spectrum = []

    def arrived(index: int, share: xr.Dataset) -> None:
        writer.write(share, parts[index]["first"])
        if "spectrum" in share:
            spectrum.append(share["spectrum"] * share.sizes["trajectory"])

    try:
        map_parts(simulate_share, parts, address=address, on_result=arrived, progress=callback)
    except BaseException:
        writer.abandon()
        raise
    extra = None
    if spectrum:
        total = sum(spectrum[1:], spectrum[0]) / config.trajectories
        extra = xr.Dataset({"spectrum": total.assign_attrs(spectrum[0].attrs)})
    return writer.finish(extra)


GENERATOR_HELP = {
    "grf": "Gaussian random fields σ²(|k|² + ℓ²)^(−s)",
    "kolmogorov": "2-D Kolmogorov flow vorticity(trajectory, time, y, x); Ctrl-C keeps its state, rerun resumes",
    "qg": "two-layer quasi-geostrophic jet pv_upper, pv_lower(trajectory, time, y, x) on a β-plane; Ctrl-C keeps "
          "its state, rerun resumes",
    "lorenz96": "two-scale Lorenz-96 slow(trajectory, time, k), fast(trajectory, time, j)",
    "allen-cahn": "stochastic Allen–Cahn u(trajectory, time, y, x) sampled from its invariant measure "
                  "(non-Gaussian); Ctrl-C keeps its state, rerun resumes"}


@dataclass(kw_only=True)
class DataRequest(Request):
    """Generate a dataset with one of our solvers (``generator``: a key of ``GENERATOR_CONFIGS``)."""

    command: ClassVar[str] = "data"
    summary: ClassVar[str] = "generate a dataset with one of our solvers"
    generator: str = "grf"
    config: param.Parameterized | None = None  # the generator's config (None: its defaults)
    name: str | None = option("dataset name in the data folder, .nc or .zarr (default: a name encoding the "
                              "parameters, reused if present)", flag="out")
    overwrite: bool = option(OVERWRITE, default=False, action="store_true")
    scheduler: str | None = option(SCHEDULER.format(parts="the trajectories (shares of the same seeded batch)"),
                                   metavar="ADDRESS")

    def __post_init__(self):
        if self.generator not in GENERATOR_CONFIGS:
            raise EngineError(f"generator must be one of {', '.join(GENERATOR_CONFIGS)}, not {self.generator!r}")
        self.config = self.config or GENERATOR_CONFIGS[self.generator]()

    @property
    def target(self) -> str:
        return self.name or self.generator

    @classmethod
    def from_options(cls, values: dict) -> DataRequest:
        generator = values.get("generator", "grf")
        config = GENERATOR_CONFIGS[generator](**values.get("config") or {}) if generator in GENERATOR_CONFIGS else None
        return cls(**{**values, "generator": generator, "config": config})

    def run(self, *, store: DataStore, callback: Callable[[dict], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> DataResult:
        return generate_data(store=store, config=self.config, name=self.name, overwrite=self.overwrite,
                             callback=callback, scheduler=scheduler_address(self.scheduler))


def generate_data(*, store: DataStore, config: param.Parameterized, name: str | None = None,
                  overwrite: bool = False, callback: Callable[[dict], None] | None = None,
                  scheduler: str | None = None) -> DataResult:
    """Generate ``config``'s dataset as ``name``; without a name it is named by its parameters and reused when
    the folder already holds it; a named file that exists is replaced only with ``overwrite``. With a
    ``scheduler`` a Kolmogorov, QG or Lorenz-96 set is integrated on that Dask cluster (GRFs are drawn here)."""
    if name is None and store.path(cached_name(config)).exists():
        return DataResult(cached_name(config), reused=True)
    if name is not None:
        store.output_path(name, overwrite=overwrite)
    name = name or cached_name(config)
    if scheduler is None or isinstance(config, GRFConfig):
        write_generated(config, store, name, callback)
    elif name.endswith(".zarr"):
        stream_to_zarr(config, store.path(name), address=scheduler, callback=callback)
    else:
        check_memory(required=generation_bytes(config), what=f"gathering {name}", device="cpu",
                     fix="ask for fewer trajectories or snapshots, or a smaller size, or write .zarr (streamed)")
        write_dataset(simulate_on_cluster(config, address=scheduler, callback=callback), store.path(name))
    return DataResult(name)
