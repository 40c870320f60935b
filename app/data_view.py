"""The Data view: browse a dataset's fields over trajectories and time, their spectra, and the field
coarse-grained at diffusion scale λ beside the original (engine.coarse). 1-D series (two-scale Lorenz-96
``slow``/``fast``) show as Hovmöller diagrams (site × time) with the chosen time marked, and line spectra."""
from __future__ import annotations

from typing import Callable

import numpy as np
import panel as pn
import param
import torch
import xarray as xr

from app.input_check import checked
from app.plots import CurvePlot, FieldPlot, ImagePlot, shared_mapper
from engine.coarse import OUProcess, coarse_grain_physical, reference_a, surviving_wavenumber
from engine.config import CoarseConfig
from engine.data.fields import field_std, field_variable, grid_variables, holds_spectrum_of
from engine.data.store import DataStore
from engine.diagnostics import line_spectra
from engine.spectral import radial_spectrum, shell_counts

COARSE_SHOWN = ["a", "b2", "seed"]  # λ is the sidebar's shared diffusion scale


def series_variables(ds: xr.Dataset) -> list[str]:
    """Variables of 1-D periodic series over time: dims (..., time, site), e.g. Lorenz-96 ``slow`` and ``fast``."""
    return [name for name, da in ds.data_vars.items() if da.ndim >= 2 and da.dims[-2] == "time"
            and da.dims[-1] not in ("y", "x", "wavenumber")]


class DataView(pn.viewable.Viewer):
    """One snapshot of the chosen dataset, its spectrum, and its coarse-grained version at λ; for a 1-D series,
    the whole trajectory as a Hovmöller diagram."""

    trajectory = param.Integer(default=0, bounds=(0, 0), doc="trajectory (or sample) index")
    frame = param.Integer(default=0, bounds=(0, 0), doc="time index")
    variable = param.Selector(default=None, objects=[], doc="the dataset's variable shown")
    coarse = param.ClassSelector(class_=CoarseConfig, doc="the forward process shown beside the data")

    def __init__(self, store: DataStore, dataset: str, **params):
        super().__init__(coarse=CoarseConfig(name="Coarse-graining at λ", lam=0.02), **params)
        self.store, self.series, self.ds = store, False, None
        self.mapper = shared_mapper(1.0)
        self.field_plot = FieldPlot("field", self.mapper, 300)
        self.coarse_plot = FieldPlot("coarse-grained at λ", self.mapper, 300)
        self.series_plot, self.coarse_series_plot = (
            ImagePlot(title, "site k", "model time", mapper=self.mapper, width=300, height=300, colorbar=False,
                      marker=True) for title in ("Hovmöller: series", "Hovmöller: coarse-grained at λ"))
        self.spectrum = CurvePlot("radial power spectrum of the snapshot", ["data", "coarse", "time mean"],
                                  "wavenumber k", "S(k)")
        self.info = pn.pane.Markdown("", name="data-info")
        self.player = pn.widgets.Player(label="time", start=0, end=1, value=0, interval=150, loop_policy="loop",
                                        width=400, show_loop_controls=False)
        self.player.link(self, value="frame")
        self.plots = pn.FlexBox()
        self.opened = False  # the watchers below draw only once a dataset is open
        self.preferred_field: Callable[[], str] = lambda: ""  # the variable to show when a dataset has it
        self.open(dataset)
        self.opened = True

    @param.depends("trajectory", "frame", "coarse.lam", "coarse.a", "coarse.b2", "coarse.seed", watch=True)
    def _index_changed(self) -> None:
        if self.opened:
            self._draw()

    @param.depends("variable", watch=True)
    def _variable_changed(self) -> None:
        self._open_variable()

    def open(self, dataset: str) -> None:
        """Switch to another dataset: its fields (..., y, x), else its 1-D series (..., time, site)."""
        ds = self.store.open(dataset)
        fields = grid_variables(ds)
        choices = fields or series_variables(ds) or [field_variable(ds, None, dataset)]  # none: say why
        series = not fields
        if series != self.series or self.ds is None:  # the reference diffusivity differs between 2-D and 1-D
            self.coarse.param.update(a=reference_a(1 if series else 2))
        self.ds, self.name_shown, self.series = ds, dataset, series
        shown = (self.series_plot, self.coarse_series_plot) if series else (self.field_plot, self.coarse_plot)
        self.plots[:] = [*(plot.figure for plot in shown), self.spectrum.figure]  # only the kind this data needs
        self.spectrum.figure.title.text = ("line" if series else "radial") + " power spectrum of the snapshot"
        wanted = self.preferred_field()  # before the choices change: the Variable widget may pick their first
        self.param.variable.objects = choices
        chosen = wanted if wanted in choices else choices[0]
        if self.variable == chosen:
            self._open_variable()
        else:
            self.variable = chosen  # its watcher opens it

    def _open_variable(self) -> None:
        """Reset indices, colour range and the time-mean spectrum for the chosen variable."""
        da = self.ds[self.variable]
        self.leading = list(da.dims[:-1] if self.series else da.dims[:-2])
        sizes = [da.sizes[d] for d in self.leading]
        self.has_time = "time" in self.leading and (self.series or len(self.leading) >= 2)
        n_traj = sizes[0] if self.leading else 1
        n_time = da.sizes["time"] if self.has_time else 1
        with param.parameterized.batch_call_watchers(self):
            self.param.trajectory.bounds, self.param.frame.bounds = (0, max(n_traj - 1, 0)), (0, max(n_time - 1, 0))
            self.trajectory, self.frame = 0, 0
        self.player.end, self.player.value, self.player.visible = max(n_time - 1, 1), 0, self.has_time
        if self.series:
            sample = da.isel({self.leading[0]: slice(0, 8)})
            mean, std = float(sample.mean()), float(sample.std())
            self.mapper.update(low=mean - 3 * std, high=mean + 3 * std)
        else:
            limit = 3 * field_std(self.ds, self.variable)
            self.mapper.update(low=-limit, high=limit)
            mean = self._mean_spectrum(da)
            self.spectrum.update("time mean", np.arange(1, mean.shape[0]), mean[1:])
        self._draw()

    def _mean_spectrum(self, da: xr.DataArray) -> np.ndarray:
        """The variable's shell-summed spectrum over the data: the stored one when it is this variable's, else the
        mean over the first 8 snapshots of its first 8 trajectories."""
        if holds_spectrum_of(self.ds, self.variable):
            return self.ds["spectrum"].values * shell_counts(da.sizes["x"]).numpy()
        first = da.isel({dim: slice(0, 8) for dim in da.dims[:-2]}).values
        return radial_spectrum(torch.from_numpy(np.asarray(first, dtype=np.float32))).numpy()

    def snapshot(self) -> np.ndarray:
        """The field at the chosen trajectory (first dim) and time index, (n, n) float32."""
        index = {}
        for position, dim in enumerate(self.leading):
            if dim == "time" and self.has_time:
                index[dim] = self.frame
            else:
                index[dim] = self.trajectory if position == 0 else 0
        return np.asarray(self.ds[self.variable].isel(index).values, dtype=np.float32)

    def _coarse(self, values: np.ndarray, ndim: int) -> tuple[np.ndarray, OUProcess]:
        """A noisy sample of ``values`` at λ (``engine.coarse.coarse_grain_physical``), and the process."""
        process = OUProcess(self.coarse.a, self.coarse.b2, ndim)
        generator = torch.Generator().manual_seed(self.coarse.seed)
        coarse = coarse_grain_physical(torch.from_numpy(values), self.coarse.lam, process, generator)
        return coarse.noisy.numpy(), process

    def _draw(self) -> None:
        if self.series:
            self._draw_series()
            return
        field = self.snapshot()
        coarse, process = self._coarse(field, 2)
        self.field_plot.update(field)
        self.coarse_plot.update(coarse)
        shells = np.arange(1, field.shape[-1] // 2 + 1)
        self.spectrum.update("data", shells, radial_spectrum(torch.from_numpy(field)).numpy()[1:])
        self.spectrum.update("coarse", shells, radial_spectrum(torch.from_numpy(coarse)).numpy()[1:])
        self._describe(field.shape[-1], process, "noise ∝ 1/k²")

    def _draw_series(self) -> None:
        """The chosen trajectory over (time, site), coarse-grained at λ site-wise at every time (independent
        noise per time), the chosen time marked; line spectra of that time and the trajectory's mean."""
        da = self.ds[self.variable]
        select = {dim: (self.trajectory if i == 0 else 0) for i, dim in enumerate(self.leading) if dim != "time"}
        history = np.asarray(da.isel(select).transpose("time", da.dims[-1]).values, np.float32)
        coarse, process = self._coarse(history, 1)
        times = np.asarray(self.ds["time"].values, np.float64) if "time" in self.ds.coords else np.arange(len(history))
        span = float(times[-1] - times[0]) or 1.0
        for plot, image in ((self.series_plot, history), (self.coarse_series_plot, coarse)):
            plot.update(image, y0=times[0], dw=image.shape[-1], dh=span)
            plot.marker.location = float(times[self.frame])
        n = history.shape[-1]
        shells = np.arange(1, n // 2 + 1)
        self.spectrum.update("data", shells, line_spectra(torch.from_numpy(history[self.frame])).numpy()[1:])
        self.spectrum.update("coarse", shells, line_spectra(torch.from_numpy(coarse[self.frame])).numpy()[1:])
        self.spectrum.update("time mean", shells, line_spectra(torch.from_numpy(history)).mean(0).numpy()[1:])
        self._describe(n, process, "noise ∝ 1/k² in 1-D")

    def _describe(self, n: int, process: OUProcess, noise: str) -> None:
        kept = surviving_wavenumber(self.coarse.lam, n, process)
        where = f"trajectory {self.trajectory}" + (f", t = {float(self.ds['time'][self.frame]):.2f}"
                                                   if self.has_time and "time" in self.ds.coords else "")
        self.info.object = (f"**{self.name_shown}** · `{self.variable}` {dict(self.ds[self.variable].sizes)} · "
                            f"{where}\n\n{self._variables_line()}"
                            f"At λ = {self.coarse.lam:g} modes up to |k| ≈ {kept:g} keep half their amplitude "
                            f"(e^(μ_k λ) ≥ ½); finer ones are replaced by {noise}.")

    def _variables_line(self) -> str:
        """The dataset's fields with their units: an emulator's state is all of them (those on one grid)."""
        fields = grid_variables(self.ds)
        if len(fields) < 2:
            return ""
        named = ", ".join(f"`{name}`" + (f" ({self.ds[name].attrs['units']})" if self.ds[name].attrs.get("units")
                                         else "") for name in fields)
        return f"Fields: {named}; an emulator trained on this data learns them all as one state.\n\n"

    def controls(self) -> list:
        """The sidebar's part for this view: what is shown, and the forward process besides λ."""
        return [pn.widgets.Select.from_param(self.param.variable, label="Variable", sizing_mode="stretch_width"),
                pn.widgets.IntSlider.from_param(self.param.trajectory, sizing_mode="stretch_width"),
                pn.Param(self.coarse, parameters=COARSE_SHOWN, widgets={"seed": checked(pn.widgets.IntInput)},
                         name="Coarse-graining (forward process)", sizing_mode="stretch_width")]

    def __panel__(self):
        return pn.Column(self.player, self.plots, self.info, sizing_mode="stretch_width")
