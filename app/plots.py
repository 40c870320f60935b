"""Every Bokeh figure of the dashboard: built once, updated in place through its ColumnDataSource.

``FieldPlot`` (a periodic field on a shared diverging scale), ``ImagePlot`` (any image over two axes with a
colour bar: spectrum vs time, SNR over (t, k), Hovmöller diagrams) and ``CurvePlot`` (named lines). See
docs/architecture.md for where the app sits.
"""
from __future__ import annotations

import numpy as np
import xarray as xr
from bokeh.models import (
    ColorBar,
    ColumnDataSource,
    HoverTool,
    Label,
    LinearAxis,
    LinearColorMapper,
    LinearScale,
    LogAxis,
    LogScale,
    Span,
)
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

from engine.animation import RDBU  # one diverging palette for the dashboard and the exported animations
from engine.spectral import HELD_FRACTION

PALETTE = tuple("#%02x%02x%02x" % tuple(rgb) for rgb in RDBU.astype(int))  # diverging: blue negative, red positive
LINE_COLOURS = {"data": "#222222", "noise": "#999999", "generated": "#d62728", "A": "#1f77b4", "B": "#d62728",
                "x_t": "#2ca02c", "coarse": "#ff7f0e", "time mean": "#9467bd", "loss": "#9ecae1",
                "smoothed": "#08519c", "model": "#d62728", "truth": "#222222", "emulator": "#d62728",
                "CRPS / σ_data": "#1f77b4", "spread / skill": "#ff7f0e",
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


EMPTY_IMAGE = np.full((2, 2), np.nan, np.float32)  # drawn transparent: nothing until the first update


PLACEHOLDER_TEXT, PLACEHOLDER_BACKGROUND = "#404040", "#ffffff"  # contrast 10.4:1 (WCAG AA asks for 4.5:1)


def stretching(basis: int, grow: float = 1.6) -> dict:
    """Options that let a figure (or column) fill its FlexBox row: it starts at ``basis`` px, the row's spare width
    is shared out up to ``grow`` × ``basis``, and below 0.8 × ``basis`` it wraps to the next line."""
    return {"min_width": int(0.8 * basis), "max_width": int(grow * basis), "styles": {"flex": f"1 1 {basis}px"}}


COLUMN = {"sizing_mode": "stretch_width", **stretching(420)}  # a column of a FlexBox row that grows with it
FIELD_ASPECT = 1.1  # a field figure's width over its height: a square image, its colour bar right, its title above


def placeholder(fig, text: str, height: int) -> Label:
    """A note inside an empty figure saying what will appear there (hidden by the first update): dark text on a
    white box, readable on an empty image's grey as on a blank plot."""
    label = Label(x=12, y=height // 2 - 40, x_units="screen", y_units="screen", text=text, text_color=PLACEHOLDER_TEXT,
                  text_font_size="12px", background_fill_color=PLACEHOLDER_BACKGROUND, background_fill_alpha=0.9,
                  padding=4, name="placeholder")
    fig.add_layout(label)
    return label


class FieldPlot:
    """A periodic field as an image with a fixed diverging colour range (shared by fields that are compared), a
    colour bar, and the value under the pointer, ``size`` px wide and growing with the row; fields wider than the
    figure can grow are rasterized to that width before they are sent."""

    def __init__(self, title: str, mapper: LinearColorMapper, size: int = 300, empty: str = ""):
        options = stretching(size)
        self.pixels, self.mapper = options["max_width"], mapper
        self.source = ColumnDataSource({"image": [EMPTY_IMAGE]})
        self.figure = figure(title=title, sizing_mode="scale_width", aspect_ratio=FIELD_ASPECT, x_range=(0, 1),
                             y_range=(0, 1), toolbar_location=None, name=title, tools="", **options)
        renderer = self.figure.image("image", x=0, y=0, dw=1, dh=1, color_mapper=mapper, source=self.source)
        self.figure.add_tools(HoverTool(renderers=[renderer], tooltips=[("value", "@image{0.000}")]))
        self.figure.add_layout(ColorBar(color_mapper=mapper, width=8, padding=4), "right")
        self.figure.axis.visible = False
        self.figure.grid.visible = False
        self.note = placeholder(self.figure, empty, size) if empty else None

    def update(self, field: np.ndarray) -> None:
        field = np.asarray(field, dtype=np.float32)
        if field.shape[-1] > self.pixels:
            field = rasterize(field, self.pixels)
        self.source.data = {"image": [field]}
        if self.note is not None and self.note.visible:
            self.note.visible = False


def shared_mapper(limit: float) -> LinearColorMapper:
    """A diverging colour scale on [−limit, limit], shared by the fields that are compared."""
    return LinearColorMapper(palette=PALETTE, low=-limit, high=limit)


class ImagePlot:
    """An image over (x, y) in data units with a colour bar, placed by ``update(image, x0, y0, dw, dh)``;
    ``marker`` adds a dashed horizontal line (the chosen time of a Hovmöller diagram, say)."""

    def __init__(self, title: str, x_label: str, y_label: str, *, mapper: LinearColorMapper | None = None,
                 width: int = 420, height: int = 300, colorbar: bool = True, marker: bool = False, empty: str = "",
                 **ranges):
        self.mapper = mapper or LinearColorMapper(palette=Viridis256, low=-8, high=8)
        self.source = ColumnDataSource({"image": [EMPTY_IMAGE], "x0": [0.0], "y0": [0.0], "dw": [1.0], "dh": [1.0]})
        self.figure = figure(title=title, sizing_mode="stretch_width", height=height, x_axis_label=x_label,
                             y_axis_label=y_label, toolbar_location=None, name=title, tools="", **stretching(width),
                             **ranges)
        renderer = self.figure.image("image", x="x0", y="y0", dw="dw", dh="dh", color_mapper=self.mapper,
                                     source=self.source)
        self.figure.add_tools(HoverTool(renderers=[renderer], tooltips=[(x_label, "$x{0.[00]}"),
                                                                        (y_label, "$y{0.[00]}"),
                                                                        ("value", "@image{0.000}")]))
        self.note = placeholder(self.figure, empty, height) if empty else None
        if colorbar:
            self.figure.add_layout(ColorBar(color_mapper=self.mapper, width=8), "right")
        self.marker = Span(dimension="width", location=0, line_color="#222222", line_width=1, line_dash="dashed")
        if marker:
            self.figure.add_layout(self.marker)

    def update(self, image: np.ndarray, *, x0: float = 0.0, y0: float = 0.0, dw: float = 1.0, dh: float = 1.0) -> None:
        self.source.data = {"image": [np.asarray(image, dtype=np.float32)], "x0": [float(x0)], "y0": [float(y0)],
                            "dw": [float(dw)], "dh": [float(dh)]}
        if self.note is not None and self.note.visible:
            self.note.visible = False


def visible_values(y: np.ndarray, spectrum: bool) -> np.ndarray:
    """On a spectrum (a log–log plot), shells the data does not hold (≤ 10⁻¹⁰ of the line's peak, e.g. past a
    solver's dealiasing cutoff, or ≤ 0) become gaps instead of stretching the axis down to 10⁻¹⁶."""
    if not spectrum or y.size == 0:
        return y
    peak = np.nanmax(y) if np.isfinite(y).any() else 0.0
    return np.where(y > HELD_FRACTION * peak, y, np.nan) if peak > 0 else np.full_like(y, np.nan)


class CurvePlot:
    """Named lines on one figure (log–log for spectra), each updated in place, with the values under the pointer;
    until a line has points the figure shows what will appear there (``empty``) and no legend. ``row_item``: the
    figure is an item of a FlexBox row (False: it sits in a column of one)."""

    def __init__(self, title: str, names: list[str], x_label: str, y_label: str, log_x=True, log_y=True,
                 width: int = 420, height: int = 300, markers: tuple[str, ...] = (), empty: str = "",
                 row_item: bool = True):
        self.spectrum = log_x and log_y  # the log–log plots are spectra (and step counts, never near 0)
        # an item of a FlexBox row grows with the row; in a column it fills the column (which grows with its row)
        size = stretching(width) if row_item else {}
        self.figure = figure(title=title, sizing_mode="stretch_width", height=height, x_axis_label=x_label,
                             y_axis_label=y_label, x_axis_type="log" if log_x else "linear",
                             y_axis_type="log" if log_y else "linear", **size,
                             toolbar_location="above", tools="pan,wheel_zoom,box_zoom,reset,save", name=title)
        self.sources, renderers = {}, []
        for name in names:
            self.sources[name] = ColumnDataSource({"x": [], "y": []})
            style = {"source": self.sources[name], "legend_label": name, "name": name,
                     "color": LINE_COLOURS.get(name, "#555555")}
            if name in markers:  # points only: where a sampler evaluates, say
                renderers.append(self.figure.scatter("x", "y", size=7, **style))
            else:
                renderers.append(self.figure.line("x", "y", line_width=2, **style))
        # the initial ranges until the first points arrive (an empty DataRange1d makes Bokeh warn)
        self.anchor = ColumnDataSource({"x": [1.0], "y": [1.0]})
        self.figure.scatter("x", "y", source=self.anchor, alpha=0, size=0)
        y_format = "{0.000e}" if log_y else "{0.0000}"
        self.figure.add_tools(HoverTool(renderers=renderers, tooltips=[("", "$name"), (x_label, "@x{0.[000]}"),
                                                                       (y_label, "@y" + y_format)]))
        self.figure.legend.location = "bottom_left" if log_y else "top_right"
        self.figure.legend.click_policy = "hide"
        self.figure.legend.background_fill_alpha = 0.6
        self.figure.legend.visible = False
        self.note = placeholder(self.figure, empty, height) if empty else None

    def line(self, name: str, colour: str):
        """The line ``name``, added (empty, in ``colour``) the first time it is asked for."""
        if name not in self.sources:
            self.sources[name] = ColumnDataSource({"x": [], "y": []})
            self.figure.line("x", "y", source=self.sources[name], line_width=2, color=colour, legend_label=name,
                             name=name)
        return self.figure.select_one({"name": name})

    def set_log_y(self, log: bool) -> None:
        """Switch the y axis between a log and a linear scale (the lines stay)."""
        label = self.figure.yaxis[0].axis_label
        self.figure.y_scale = LogScale() if log else LinearScale()
        axis = (LogAxis if log else LinearAxis)(axis_label=label)
        self.figure.left = [axis]
        self.figure.ygrid[0].ticker = axis.ticker

    def _shown(self) -> None:
        """Points arrived: drop the anchor and the placeholder, show the legend."""
        if self.figure.legend.visible:
            return
        self.anchor.data = {"x": [], "y": []}
        self.figure.legend.visible = True
        if self.note is not None:
            self.note.visible = False

    def update(self, name: str, x, y) -> None:
        y = visible_values(np.asarray(y, dtype=np.float64), self.spectrum)
        self.sources[name].data = {"x": np.asarray(x, dtype=np.float64), "y": y}
        if len(y):
            self._shown()

    def band(self, name: str, x, lower, upper, colour: str = "#1f77b4") -> None:
        """The shaded band ``name`` between ``lower`` and ``upper`` over x (a spread over seeds, say), added the
        first time, drawn under the lines; empty x hides it."""
        if name not in self.sources:
            self.sources[name] = ColumnDataSource({"x": [], "lower": [], "upper": []})
            band = self.figure.varea("x", "lower", "upper", source=self.sources[name], fill_color=colour,
                                     fill_alpha=0.25, legend_label=name, name=name)
            self.figure.renderers.insert(0, self.figure.renderers.pop(self.figure.renderers.index(band)))
        self.sources[name].data = {"x": np.asarray(x, dtype=np.float64), "lower": np.asarray(lower, dtype=np.float64),
                                   "upper": np.asarray(upper, dtype=np.float64)}
        if len(x):
            self._shown()

    def extend(self, name: str, x, y, keep: int = 20_000) -> None:
        """Append points (sent to the browser as a patch of new points, not the whole line)."""
        self.sources[name].stream({"x": np.asarray(x, dtype=np.float64), "y": np.asarray(y, dtype=np.float64)},
                                  rollover=keep)
        self._shown()

    def clear(self) -> None:
        for source in self.sources.values():
            source.data = {key: [] for key in source.data}


def draw_steps_against_d(plot: CurvePlot, dimensions: tuple[int, ...], steps: dict[str, list[int | None]]) -> None:
    """One line per schedule of the steps a d-sweep needed; a d whose search gave up (None) is left out."""
    for kind, counts in steps.items():
        known = [(d, s) for d, s in zip(dimensions, counts) if s is not None]
        plot.update(kind, [d for d, _ in known], [s for _, s in known])
