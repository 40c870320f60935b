"""Work spread over a Dask distributed cluster: the parts of a request (an ensemble's initial conditions, a
dataset's trajectories) become tasks, and their results come back in order.

A cluster is named by its scheduler's address (``--scheduler tcp://host:port`` or ``EMULATOR_STUDIO_SCHEDULER``);
without one everything runs in this process. Workers read the data folder by its path, so it must be shared (a
network filesystem, or the same machine). Dask's own scheduler does the placing, retries and monitoring; this
module only names the address and maps a function over the parts. docs/scaling.md has the commands.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
import xarray as xr

from engine.errors import EngineError
from engine.files import discard, scratch_path, write_tree

SCHEDULER_VARIABLE = "EMULATOR_STUDIO_SCHEDULER"
CONNECT_SECONDS = 10


def scheduler_address(flag: str | None = None) -> str | None:
    """The scheduler asked for: the flag, else ``EMULATOR_STUDIO_SCHEDULER``, else None (run locally)."""
    address = flag or os.environ.get(SCHEDULER_VARIABLE) or None
    if address is not None and "://" not in address:
        raise EngineError(f"scheduler address {address!r} needs a protocol, e.g. tcp://{address}")
    return address


def _dask():
    """Dask's ``distributed`` package, imported on first use (optional, ≈ 1 s to import)."""
    try:
        import distributed
    except ImportError:
        raise EngineError("running on a cluster needs Dask: pip install 'emulator-studio[cluster]'") from None
    return distributed


def _lazy_zeros(shape: tuple, dtype, chunks: tuple):
    """A dask array of zeros (nothing allocated): the template of a zarr store written in shares."""
    import dask.array

    return dask.array.zeros(shape, dtype=dtype, chunks=chunks)


def connect(address: str):
    """A Dask client of the scheduler at ``address`` (a clear error when dask is missing or nobody answers)."""
    try:
        return _dask().Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise EngineError(f"no Dask scheduler answered at {address} within {CONNECT_SECONDS} s ({err})") from None


def dashboard_link(address: str) -> str | None:
    """The scheduler's web dashboard, or None when it cannot be reached."""
    try:
        with connect(address) as client:
            return client.dashboard_link
    except EngineError:
        return None


def _one_thread(function: Callable, part: dict):
    """``function(**part)`` at one intra-op thread: a Dask worker runs one task per thread."""
    torch.set_num_threads(1)
    return function(**part)


def map_parts(function: Callable, parts: Iterable[dict], *, address: str | None,
              on_result: Callable[[int, object], None] | None = None,
              progress: Callable[[dict], None] | None = None) -> list:
    """``[function(**part) for part in parts]``, on the cluster at ``address`` (one single-threaded task per part,
    results in the parts' order) or here when None; ``on_result(index, result)`` is called as each one arrives,
    then ``progress`` gets ``{"kind": "progress", "step": parts arrived, "steps": parts}``."""
    parts = list(parts)
    results: list = [None] * len(parts)
    count = [0]

    def arrived(index: int, result) -> None:
        results[index], count[0] = result, count[0] + 1
        if on_result is not None:
            on_result(index, result)
        if progress is not None:
            progress({"kind": "progress", "step": count[0], "steps": len(parts)})

    if address is None:
        for index, part in enumerate(parts):
            arrived(index, function(**part))
        return results
    with connect(address) as client, client.as_current():
        futures = {client.submit(_one_thread, function, part, pure=False): index for index, part in enumerate(parts)}
        for future in _dask().as_completed(futures):
            arrived(futures[future], future.result())  # a task's exception is raised here, as it was raised there
    return results


class ZarrInShares:
    """A zarr dataset written share by share along ``dim`` (index 0…size−1) as shares arrive, in any order, into a
    temporary folder beside ``path`` that replaces ``path`` once every share is in: never half a dataset, and never
    more than one share in memory. Variables without ``dim`` are taken from the first share."""

    def __init__(self, path: str | Path, *, dim: str, size: int, chunks: dict[str, int] | None = None):
        """``chunks``: the store's chunk length along other dimensions (whole by default); along ``dim`` a chunk
        is one share."""
        self.path, self.dim, self.size, self.chunks = Path(path), dim, size, chunks or {}
        self.tmp = scratch_path(self.path)
        self.written = 0

    def _start(self, share: xr.Dataset) -> None:
        """Write the store's layout and the variables without ``dim``: lazy zeros of the full size, chunked by
        the share's length along ``dim``."""
        length = share.sizes[self.dim]
        variables = {}
        for name, array in share.variables.items():  # data and coordinates along ``dim`` (but ``dim`` itself)
            if self.dim not in array.dims or name == self.dim:
                continue
            shape = tuple(self.size if d == self.dim else n for d, n in zip(array.dims, array.shape))
            chunks = tuple(length if d == self.dim else min(n, self.chunks.get(d, n))
                           for d, n in zip(array.dims, array.shape))
            variables[name] = (array.dims, _lazy_zeros(shape, array.dtype, chunks), array.attrs)
        coords = {name: coord for name, coord in share.coords.items() if self.dim not in coord.dims}
        coords[self.dim] = np.arange(self.size)
        self.attrs = dict(share.attrs)
        along = [name for name in share.coords if name in variables]
        template = xr.Dataset(variables, coords=coords, attrs=self.attrs).set_coords(along)
        shutil.rmtree(self.tmp, ignore_errors=True)
        template.to_zarr(self.tmp, mode="w", compute=False, zarr_format=2)

    def write(self, share: xr.Dataset, start: int) -> None:
        """Put ``share`` at indices ``start…`` along ``dim``."""
        if self.written == 0:
            self._start(share)
        fixed = [name for name, v in share.variables.items() if self.dim not in v.dims]
        region = {self.dim: slice(start, start + share.sizes[self.dim])}
        share.drop_vars(fixed).drop_vars(self.dim).to_zarr(self.tmp, region=region, zarr_format=2)
        self.written += share.sizes[self.dim]

    def finish(self, extra: xr.Dataset | None = None, *, keep: dict[str, slice] | None = None) -> Path:
        """Add ``extra`` variables (e.g. a spectrum over all shares; its attrs join the shares'), keep only the
        ``keep`` slices of those dimensions (copied lazily, share by share), and move the store into place."""
        if self.written != self.size:
            raise EngineError(f"{self.path.name}: {self.written} of {self.size} entries along {self.dim} written")
        if extra is not None:  # appending sets the store's attrs to extra's: keep the shares'
            extra.assign_attrs({**self.attrs, **extra.attrs}).to_zarr(self.tmp, mode="a", zarr_format=2)
        store = self._cut(keep) if keep else self.tmp
        try:
            return write_tree(self.path, lambda tmp: os.replace(store, tmp))
        finally:
            discard(store)
            self.abandon()

    def _cut(self, keep: dict[str, slice]) -> Path:
        """A copy of the store with only the ``keep`` slices along their dimensions (the store itself when they
        drop nothing)."""
        full = xr.open_zarr(self.tmp, zarr_format=2)
        if all(len(range(full.sizes[dim])[cut]) == full.sizes[dim] for dim, cut in keep.items()):
            return self.tmp
        cut = scratch_path(self.path)
        kept = full.isel(keep)
        for variable in kept.variables.values():
            variable.encoding.pop("chunks", None)  # the cut changes the last chunk: zarr chunks it afresh
        kept.to_zarr(cut, mode="w", zarr_format=2)
        return cut

    def abandon(self) -> None:
        """Remove the temporary store (a share failed, or it was moved into place)."""
        discard(self.tmp)
