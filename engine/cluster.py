"""Work spread over a Dask distributed cluster: the parts of a request (an ensemble's initial conditions, a
dataset's trajectories) become tasks, and their results come back in order.

A cluster is named by its scheduler's address (``--scheduler tcp://host:port`` or ``EMULATOR_STUDIO_SCHEDULER``);
without one everything runs in this process. Workers read the data folder by its path, so it must be shared (a
network filesystem, or the same machine). Dask's own scheduler does the placing, retries and monitoring; this
module only names the address and maps a function over the parts. README.md ("Scaling out") has the commands.
"""
from __future__ import annotations

import os
from typing import Callable, Iterable

from engine.errors import EngineError

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


def map_parts(function: Callable, parts: Iterable[dict], *, address: str | None,
              on_result: Callable[[int, object], None] | None = None) -> list:
    """``[function(**part) for part in parts]``, on the cluster at ``address`` (one task per part, results in
    the parts' order) or here when None; ``on_result(index, result)`` is called as each one arrives."""
    parts = list(parts)
    results: list = [None] * len(parts)
    if address is None:
        for index, part in enumerate(parts):
            results[index] = function(**part)
            if on_result is not None:
                on_result(index, results[index])
        return results
    with connect(address) as client, client.as_current():
        futures = {client.submit(function, pure=False, **part): index for index, part in enumerate(parts)}
        for future in _dask().as_completed(futures):
            index = futures[future]
            results[index] = future.result()  # a task's exception is raised here, as it was raised there
            if on_result is not None:
                on_result(index, results[index])
    return results
