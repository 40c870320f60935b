"""The Data view: browse a dataset's fields over trajectories and time, their spectra, and the field
coarse-grained at diffusion scale λ beside the original (engine.coarse)."""
from __future__ import annotations

import numpy as np
import panel as pn
import param
import torch
import xarray as xr

from app.plots import CurvePlot, FieldPlot, shared_mapper
from engine.coarse import OUProcess, coarse_grain, surviving_wavenumber
from engine.config import CoarseConfig
from engine.data.store import DataStore, field_variable
from engine.spectral import radial_spectrum, shell_counts

LAM_WIDGETS = {"lam": {"type": pn.widgets.FloatSlider, "step": 0.001}, "seed": pn.widgets.IntInput}


def pixel_std(ds: xr.Dataset, variable: str) -> float:
    """The fields' standard deviation from the stored spectrum (pixel variance = Σ_k modal variance)."""
    if "spectrum" in ds and ds["spectrum"].size == ds.sizes["x"] // 2 + 1:
        counts = shell_counts(ds.sizes["x"]).numpy()
        return float(np.sqrt((ds["spectrum"].values * counts)[1:].sum()))
    return float(ds[variable].isel({d: slice(0, 8) for d in ds[variable].dims[:-2]}).std())


class DataView(pn.viewable.Viewer):
    """One snapshot of the chosen dataset, its spectrum, and its coarse-grained version at λ."""

    trajectory = param.Integer(default=0, bounds=(0, 0), doc="trajectory (or sample) index")
    frame = param.Integer(default=0, bounds=(0, 0), doc="time index")

    def __init__(self, store: DataStore, dataset: str, **params):
        super().__init__(**params)
        self.store, self.coarse = store, CoarseConfig(name="Coarse-graining at λ", lam=0.02)
        self.mapper = shared_mapper(1.0)
        self.field_plot = FieldPlot("field", self.mapper, 300)
        self.coarse_plot = FieldPlot("coarse-grained at λ", self.mapper, 300)
        self.spectrum = CurvePlot("radial power spectrum of the snapshot", ["data", "coarse", "time mean"],
                                  "wavenumber k", "S(k)")
        self.info = pn.pane.Markdown("", name="data-info")
        self.player = pn.widgets.Player(name="time", start=0, end=1, value=0, interval=150, loop_policy="loop",
                                        width=420, show_loop_controls=False)
        self.player.link(self, value="frame")
        self.param.watch(lambda *_: self._draw(), ["trajectory", "frame"])
        self.coarse.param.watch(lambda *_: self._draw(), ["lam", "a", "b2", "seed"])
        self.open(dataset)

    def open(self, dataset: str) -> None:
        """Switch to another dataset: reset indices, colour range and the time-mean spectrum."""
        self.ds = self.store.open(dataset)
        self.name_shown, self.variable = dataset, field_variable(self.ds, None, dataset)
        da = self.ds[self.variable]
        self.leading = list(da.dims[:-2])
        sizes = [da.sizes[d] for d in self.leading]
        self.has_time = "time" in self.leading and len(self.leading) >= 2
        n_traj = sizes[0] if self.leading else 1
        n_time = da.sizes["time"] if self.has_time else 1
        with param.parameterized.batch_call_watchers(self):
            self.param.trajectory.bounds, self.param.frame.bounds = (0, max(n_traj - 1, 0)), (0, max(n_time - 1, 0))
            self.trajectory, self.frame = 0, 0
        self.player.end, self.player.value, self.player.visible = max(n_time - 1, 1), 0, self.has_time
        limit = 3 * pixel_std(self.ds, self.variable)
        self.mapper.update(low=-limit, high=limit)
        if "spectrum" in self.ds and self.ds["spectrum"].size == da.sizes["x"] // 2 + 1:
            mean = self.ds["spectrum"].values * shell_counts(da.sizes["x"]).numpy()
            self.spectrum.update("time mean", np.arange(1, mean.shape[0]), mean[1:])
        self._draw()

    def snapshot(self) -> np.ndarray:
        """The field at the chosen trajectory (first dim) and time index, (n, n) float32."""
        index = {}
        for position, dim in enumerate(self.leading):
            if dim == "time" and self.has_time:
                index[dim] = self.frame
            else:
                index[dim] = self.trajectory if position == 0 else 0
        return np.asarray(self.ds[self.variable].isel(index).values, dtype=np.float32)

    def _draw(self) -> None:
        field = self.snapshot()
        mean, std = float(field.mean()), float(field.std()) or 1.0
        process = OUProcess(self.coarse.a, self.coarse.b2)
        generator = torch.Generator().manual_seed(self.coarse.seed)
        _, noisy = coarse_grain(torch.from_numpy((field - mean) / std), self.coarse.lam, process, generator)
        coarse = noisy.numpy() * std + mean
        self.field_plot.update(field)
        self.coarse_plot.update(coarse)
        shells = np.arange(1, field.shape[-1] // 2 + 1)
        self.spectrum.update("data", shells, radial_spectrum(torch.from_numpy(field)).numpy()[1:])
        self.spectrum.update("coarse", shells, radial_spectrum(torch.from_numpy(coarse)).numpy()[1:])
        n = field.shape[-1]
        kept = surviving_wavenumber(self.coarse.lam, n, process)
        where = f"trajectory {self.trajectory}" + (f", t = {float(self.ds['time'][self.frame]):.2f}"
                                                   if self.has_time and "time" in self.ds.coords else "")
        self.info.object = (f"**{self.name_shown}** · `{self.variable}` {dict(self.ds[self.variable].sizes)} · {where}\n\n"
                            f"At λ = {self.coarse.lam:g} modes up to |k| ≈ {kept:g} keep half their amplitude "
                            f"(e^(μ_k λ) ≥ ½); finer ones are replaced by noise ∝ 1/k².")

    def __panel__(self):
        index = pn.Row(pn.widgets.IntSlider.from_param(self.param.trajectory, width=220), self.player)
        return pn.Column(index, pn.Row(self.field_plot.figure, self.coarse_plot.figure, self.spectrum.figure),
                         pn.Row(self.info, pn.Param(self.coarse, widgets=LAM_WIDGETS, width=300)))
