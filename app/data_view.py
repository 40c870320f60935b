"""The Data view: browse a dataset's fields over trajectories and time, their spectra, and the field
coarse-grained at diffusion scale λ beside the original (engine.coarse). 1-D series (two-scale Lorenz-96
``slow``/``fast``) show as Hovmöller diagrams (site × time) with the chosen time marked, and line spectra."""
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
from engine.diagnostics import line_spectra
from engine.pdd import reference_a
from engine.spectral import radial_spectrum, shell_counts

LAM_WIDGETS = {"lam": {"type": pn.widgets.FloatSlider, "step": 0.001}, "seed": pn.widgets.IntInput}


def series_variables(ds: xr.Dataset) -> list[str]:
    """Variables of 1-D periodic series over time: dims (..., time, site), e.g. Lorenz-96 ``slow`` and ``fast``."""
    return [name for name, da in ds.data_vars.items() if da.ndim >= 2 and da.dims[-2] == "time"
            and da.dims[-1] not in ("y", "x", "wavenumber")]


def hovmoller_figure(title: str, mapper):
    """An image of a series over (site, time) with a line marking the chosen time."""
    from bokeh.models import ColumnDataSource, Span
    from bokeh.plotting import figure

    source = ColumnDataSource({"image": [np.zeros((2, 2), np.float32)], "dw": [1.0], "dh": [1.0], "y0": [0.0]})
    fig = figure(title=title, width=300, height=300, x_axis_label="site k", y_axis_label="model time",
                 toolbar_location=None, name=title)
    fig.image("image", x=0, y="y0", dw="dw", dh="dh", color_mapper=mapper, source=source)
    marker = Span(dimension="width", location=0, line_color="#222222", line_width=1, line_dash="dashed")
    fig.add_layout(marker)
    return source, fig, marker


def pixel_std(ds: xr.Dataset, variable: str) -> float:
    """The fields' standard deviation from the stored spectrum (pixel variance = Σ_k modal variance)."""
    if "spectrum" in ds and ds["spectrum"].size == ds.sizes["x"] // 2 + 1:
        counts = shell_counts(ds.sizes["x"]).numpy()
        return float(np.sqrt((ds["spectrum"].values * counts)[1:].sum()))
    return float(ds[variable].isel({d: slice(0, 8) for d in ds[variable].dims[:-2]}).std())


class DataView(pn.viewable.Viewer):
    """One snapshot of the chosen dataset, its spectrum, and its coarse-grained version at λ; for a 1-D series,
    the whole trajectory as a Hovmöller diagram."""

    trajectory = param.Integer(default=0, bounds=(0, 0), doc="trajectory (or sample) index")
    frame = param.Integer(default=0, bounds=(0, 0), doc="time index")
    variable = param.Selector(default=None, objects=[], doc="the dataset's variable shown")

    def __init__(self, store: DataStore, dataset: str, **params):
        super().__init__(**params)
        self.store, self.coarse = store, CoarseConfig(name="Coarse-graining at λ", lam=0.02)
        self.series, self.ds = False, None
        self.mapper = shared_mapper(1.0)
        self.field_plot = FieldPlot("field", self.mapper, 300)
        self.coarse_plot = FieldPlot("coarse-grained at λ", self.mapper, 300)
        self.series_source, self.series_figure, self.series_marker = hovmoller_figure("Hovmöller: series", self.mapper)
        self.coarse_series_source, self.coarse_series_figure, self.coarse_series_marker = hovmoller_figure(
            "Hovmöller: coarse-grained at λ", self.mapper)
        self.spectrum = CurvePlot("radial power spectrum of the snapshot", ["data", "coarse", "time mean"],
                                  "wavenumber k", "S(k)")
        self.info = pn.pane.Markdown("", name="data-info")
        self.player = pn.widgets.Player(name="time", start=0, end=1, value=0, interval=150, loop_policy="loop",
                                        width=420, show_loop_controls=False)
        self.player.link(self, value="frame")
        self.param.watch(lambda *_: self._draw(), ["trajectory", "frame"])
        self.param.watch(lambda *_: self._open_variable(), "variable")
        self.coarse.param.watch(lambda *_: self._draw(), ["lam", "a", "b2", "seed"])
        self.open(dataset)

    def open(self, dataset: str) -> None:
        """Switch to another dataset: its fields (..., y, x), else its 1-D series (..., time, site)."""
        ds = self.store.open(dataset)
        fields = [name for name, da in ds.data_vars.items() if da.dims[-2:] == ("y", "x")]
        choices = fields or series_variables(ds) or [field_variable(ds, None, dataset)]  # none: say why
        series = not fields
        if series != self.series or self.ds is None:  # the reference diffusivity differs between 2-D and 1-D
            self.coarse.param.update(a=reference_a(1 if series else 2))
        self.ds, self.name_shown, self.series = ds, dataset, series
        for figure in (self.field_plot.figure, self.coarse_plot.figure):
            figure.visible = not series
        for figure in (self.series_figure, self.coarse_series_figure):
            figure.visible = series
        self.spectrum.figure.title.text = ("line" if series else "radial") + " power spectrum of the snapshot"
        self.param.variable.objects = choices
        if self.variable == choices[0]:
            self._open_variable()
        else:
            self.variable = choices[0]  # its watcher opens it

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

    def _coarse(self, values: np.ndarray, ndim: int) -> tuple[np.ndarray, OUProcess]:
        """A noisy sample of ``values`` at λ (normalized by their mean and std, mapped back), and the process."""
        mean, std = float(values.mean()), float(values.std()) or 1.0
        process = OUProcess(self.coarse.a, self.coarse.b2, ndim)
        generator = torch.Generator().manual_seed(self.coarse.seed)
        _, noisy = coarse_grain(torch.from_numpy((values - mean) / std), self.coarse.lam, process, generator)
        return noisy.numpy() * std + mean, process

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
        for source, marker, image in ((self.series_source, self.series_marker, history),
                                      (self.coarse_series_source, self.coarse_series_marker, coarse)):
            source.data = {"image": [image.astype(np.float32)], "dw": [float(image.shape[-1])], "dh": [span],
                           "y0": [float(times[0])]}
            marker.location = float(times[self.frame])
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
        self.info.object = (f"**{self.name_shown}** · `{self.variable}` {dict(self.ds[self.variable].sizes)} · {where}\n\n"
                            f"At λ = {self.coarse.lam:g} modes up to |k| ≈ {kept:g} keep half their amplitude "
                            f"(e^(μ_k λ) ≥ ½); finer ones are replaced by {noise}.")

    def __panel__(self):
        index = pn.Row(pn.widgets.IntSlider.from_param(self.param.trajectory, width=220), self.player,
                       pn.widgets.Select.from_param(self.param.variable, name="Variable", width=140))
        return pn.Column(index, pn.Row(self.field_plot.figure, self.coarse_plot.figure, self.series_figure,
                                       self.coarse_series_figure, self.spectrum.figure),
                         pn.Row(self.info, pn.Param(self.coarse, widgets=LAM_WIDGETS, width=300)))
