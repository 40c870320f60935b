"""``data grf|kolmogorov|lorenz96``: generate a dataset with our own solvers into the data folder.

The solvers are ``engine.data.grf``, ``engine.data.kolmogorov`` and ``engine.data.lorenz96``; the cached names
and the resumable write are ``engine.data.catalog``. See docs/architecture.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import param

from engine.data.catalog import cached_name, write_generated
from engine.data.store import DataStore


@dataclass
class DataResult:
    """The dataset's name in the data folder, and whether an existing file of the same parameters was reused."""

    name: str
    reused: bool = False


def generate_data(*, store: DataStore, config: param.Parameterized, name: str | None = None,
                  overwrite: bool = False, callback: Callable[[dict], None] | None = None) -> DataResult:
    """Generate ``config``'s dataset as ``name``; without a name it is named by its parameters and reused when
    the folder already holds it; a named file that exists is replaced only with ``overwrite``."""
    if name is None and store.path(cached_name(config)).exists():
        return DataResult(cached_name(config), reused=True)
    if name is not None:
        store.output_path(name, overwrite=overwrite)
    name = name or cached_name(config)
    write_generated(config, store, name, callback)
    return DataResult(name)
