"""``data coarse``: a dataset coarse-grained at diffusion scale λ, as a new dataset in the data folder.

The forward process is ``engine.coarse`` (docs/science.md, predictor-driven diffusion); this module adds the
xarray schema and the file. See docs/architecture.md for the pipeline layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import xarray as xr

from engine.coarse import OUProcess, coarse_grain_physical
from engine.config import CoarseConfig
from engine.data.fields import GRID, grid_variables, on_grid
from engine.data.io import write_dataset
from engine.data.store import DataStore, provenance
from engine.errors import EngineError
from engine.files import check_writable
from engine.pipelines.request import OVERWRITE, Request, configs, option


@dataclass
class CoarseResult:
    """The coarse-grained dataset and its name in the data folder."""

    name: str
    dataset: xr.Dataset


def spatial_dims(da: xr.DataArray) -> tuple[str, ...]:
    """``(y, x)`` for fields, else the last dim (Lorenz-96 ``k`` or ``j``), periodic either way."""
    return GRID if on_grid(da.dims) else da.dims[-1:]


def coarse_grain_dataset(ds: xr.Dataset, *, variable: str, lam: float, process: OUProcess | None = None,
                         seed: int = 0) -> xr.Dataset:
    """``{variable}`` (a noisy coarse sample) and ``{variable}_smooth`` (its deterministic part) at scale λ,
    normalized by the variable's mean and std, coarse-grained and mapped back to physical units."""
    if variable not in ds.data_vars:
        raise EngineError(f"no variable {variable!r}; the dataset has {', '.join(map(str, ds.data_vars))}")
    da = ds[variable]
    base = process or OUProcess()
    process = OUProcess(base.a, base.b2, len(spatial_dims(da)), base.length)
    values = torch.from_numpy(np.asarray(da.values, dtype=np.float64))
    if not torch.isfinite(values).all():
        raise EngineError(f"{variable} has NaN or infinite values; coarse-graining needs finite fields")
    coarse = coarse_grain_physical(values, lam, process, torch.Generator().manual_seed(seed))
    attrs = {**da.attrs, "lam": lam}
    out = xr.Dataset(
        {variable: (da.dims, coarse.noisy.float().numpy(), {**attrs, "part": "e^(mu lambda) x + sqrt(Q) eps"}),
         f"{variable}_smooth": (da.dims, coarse.smooth.float().numpy(), {**attrs, "part": "e^(mu lambda) x"})},
        coords={**{name: ds.coords[name] for name in da.dims if name in ds.coords}, "lam": lam},
        attrs={**{f"source_{key}": value for key, value in ds.attrs.items()},
               **provenance("engine.coarse", lam=lam, a=process.a, b2=process.b2, seed=seed,
                            normalization_mean=coarse.mean, normalization_std=coarse.std)})
    out["lam"].attrs = {"long_name": "diffusion scale λ", "units": "1"}
    return out


@dataclass(kw_only=True)
class CoarseRequest(Request):
    """Coarse-grain a dataset at diffusion scale λ."""

    command: ClassVar[str] = "coarse"
    summary: ClassVar[str] = ("coarse-grain a dataset at diffusion scale λ (both the noisy sample and its "
                              "deterministic part e^(μλ)x)")
    data: str = option("dataset name in the data folder", required=True)
    variable: str | None = option("variable to coarse-grain (default: the first with dims (..., y, x), else the "
                                  "first variable)")
    config: CoarseConfig = configs(CoarseConfig)
    out: str | None = option("output name (default: <data>-lam<λ>.nc)")
    overwrite: bool = option(OVERWRITE, default=False, action="store_true")

    def run(self, *, store: DataStore, callback=None, should_stop=None) -> CoarseResult:
        return coarse_data(store=store, data=self.data, config=self.config, variable=self.variable, out=self.out,
                           overwrite=self.overwrite)


def coarse_data(*, store: DataStore, data: str, config: CoarseConfig, variable: str | None = None,
                out: str | None = None, overwrite: bool = False) -> CoarseResult:
    """Coarse-grain ``variable`` of dataset ``data`` (default: the first field (…, y, x), else the first variable)
    and write it as ``out`` (default ``<data>-lam<λ>.nc``)."""
    name = out or f"{Path(data).stem}-lam{config.lam:g}.nc"
    target = store.output_path(name, inputs=(data,), overwrite=overwrite)
    with store.open(data) as ds:
        check_writable(target, need=2 * ds.nbytes, what=name)  # the coarse field and its smooth part
        fields = grid_variables(ds)
        chosen = variable or (fields or list(ds.data_vars))[0]
        dataset = coarse_grain_dataset(ds.load(), variable=chosen, lam=config.lam,
                                       process=OUProcess(config.a, config.b2), seed=config.seed)
    write_dataset(dataset, target)
    return CoarseResult(name, dataset)
