"""Every Bokeh figure of the dashboard: built once, updated in place through its ColumnDataSource.

``FieldPlot`` (a periodic field on a shared diverging scale), ``ImagePlot`` (any image over two axes with a
colour bar: spectrum vs time, SNR over (t, k), Hovmöller diagrams) and ``CurvePlot`` (named lines). See
docs/architecture.md for where the app sits.
"""
from __future__ import annotations

import numpy as np
import xarray as xr
from bokeh.models import ColorBar, ColumnDataSource, LinearColorMapper, Span
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

from engine.animation import RDBU  # one diverging palette for the dashboard and the exported animations

PALETTE = tuple("#%02x%02x%02x" % tuple(rgb) for rgb in RDBU.astype(int))  # diverging: blue negative, red positive
LINE_COLOURS = {"data": "#222222", "noise": "#999999", "generated": "#d62728", "A": "#1f77b4", "B": "#d62728",
                "x_t": "#2ca02c", "coarse": "#ff7f0e", "time mean": "#9467bd", "loss": "#9ecae1",
                "smoothed": "#08519c", "model": "#d62728", "truth": "#222222", "emulator": "#d62728",
                "previous": "#999999", "coarse input": "#ff7f0e", "super-resolved": "#d62728", "this run": "#d62728",
                "‖b(t, x_t)‖": "#222222", "white": "#999999", "powerlaw": "#ff7f0e", "matched": "#1f77b4",
                "vp": "#9ecae1", "vp_dilated": "#08519c", "ve": "#fdae6b", "ve_dilated": "#d94801"}


def rasterize(field: np.ndarray, pixels: int) -> np.ndarray:
    """An (n, n) field averaged onto (pixels, pixels) screen cells with datashader (area-weighted mean), so a
    large grid costs the browser what the figure can show, not n² values."""
    import datashader  # imported on the first field wider than its figure: it adds a second to every start-up

    n = field.shape[-1]
    centres = np.arange(n) + 0.5
    grid = xr.DataArray(field, dims=("y", "x"), coords={"y": centres, "x": centres})
    canvas = datashader.Canvas(plot_width=pixels, plot_height=pixels, x_range=(0, n), y_range=(0, n))
    return np.asarray(canvas.raster(grid, agg="mean").values, dtype=np.float32)


class FieldPlot:
    """A periodic field as an image with a fixed, shared diverging colour range; fields wider than the figure
    are rasterized to its size before they are sent."""

    def __init__(self, title: str, mapper: LinearColorMapper, size: int = 300):
        self.pixels = size
        self.source = ColumnDataSource({"image": [np.zeros((2, 2), np.float32)]})
        self.figure = figure(title=title, width=size, height=size, x_range=(0, 1), y_range=(0, 1),
                             toolbar_location=None, match_aspect=True, name=title)
        self.figure.image("image", x=0, y=0, dw=1, dh=1, color_mapper=mapper, source=self.source)
        self.figure.axis.visible = False
        self.figure.grid.visible = False

    def update(self, field: np.ndarray) -> None:
        field = np.asarray(field, dtype=np.float32)
        if field.shape[-1] > self.pixels:
            field = rasterize(field, self.pixels)
        self.source.data = {"image": [field]}


def shared_mapper(limit: float) -> LinearColorMapper:
    """A diverging colour scale on [−limit, limit], shared by the fields that are compared."""
    return LinearColorMapper(palette=PALETTE, low=-limit, high=limit)


class ImagePlot:
    """An image over (x, y) in data units with a colour bar, placed by ``update(image, x0, y0, dw, dh)``;
    ``marker`` adds a dashed horizontal line (the chosen time of a Hovmöller diagram, say)."""

    def __init__(self, title: str, x_label: str, y_label: str, *, mapper: LinearColorMapper | None = None,
                 width: int = 420, height: int = 300, colorbar: bool = True, marker: bool = False, **ranges):
        self.mapper = mapper or LinearColorMapper(palette=Viridis256, low=-8, high=8)
        self.source = ColumnDataSource({"image": [np.zeros((2, 2), np.float32)], "x0": [0.0], "y0": [0.0],
                                        "dw": [1.0], "dh": [1.0]})
        self.figure = figure(title=title, width=width, height=height, x_axis_label=x_label, y_axis_label=y_label,
                             toolbar_location=None, name=title, **ranges)
        self.figure.image("image", x="x0", y="y0", dw="dw", dh="dh", color_mapper=self.mapper, source=self.source)
        if colorbar:
            self.figure.add_layout(ColorBar(color_mapper=self.mapper, width=8), "right")
        self.marker = Span(dimension="width", location=0, line_color="#222222", line_width=1, line_dash="dashed")
        if marker:
            self.figure.add_layout(self.marker)

    def update(self, image: np.ndarray, *, x0: float = 0.0, y0: float = 0.0, dw: float = 1.0, dh: float = 1.0) -> None:
        self.source.data = {"image": [np.asarray(image, dtype=np.float32)], "x0": [float(x0)], "y0": [float(y0)],
                            "dw": [float(dw)], "dh": [float(dh)]}


class CurvePlot:
    """Named lines on one figure (log–log for spectra), each updated in place."""

    def __init__(self, title: str, names: list[str], x_label: str, y_label: str, log_x=True, log_y=True,
                 width: int = 420, height: int = 300, markers: tuple[str, ...] = ()):
        self.figure = figure(title=title, width=width, height=height, x_axis_label=x_label, y_axis_label=y_label,
                             x_axis_type="log" if log_x else "linear", y_axis_type="log" if log_y else "linear",
                             toolbar_location="above", tools="pan,wheel_zoom,box_zoom,reset,save", name=title)
        self.sources = {}
        for name in names:
            self.sources[name] = ColumnDataSource({"x": [], "y": []})
            style = {"source": self.sources[name], "legend_label": name, "name": name,
                     "color": LINE_COLOURS.get(name, "#555555")}
            if name in markers:  # points only: where a sampler evaluates, say
                self.figure.scatter("x", "y", size=7, **style)
            else:
                self.figure.line("x", "y", line_width=2, **style)
        self.figure.legend.location = "bottom_left"
        self.figure.legend.click_policy = "hide"

    def update(self, name: str, x, y) -> None:
        self.sources[name].data = {"x": np.asarray(x, dtype=np.float64), "y": np.asarray(y, dtype=np.float64)}

    def extend(self, name: str, x, y, keep: int = 20_000) -> None:
        """Append points (sent to the browser as a patch of new points, not the whole line)."""
        self.sources[name].stream({"x": np.asarray(x, dtype=np.float64), "y": np.asarray(y, dtype=np.float64)},
                                  rollover=keep)

    def clear(self) -> None:
        for source in self.sources.values():
            source.data = {"x": [], "y": []}
