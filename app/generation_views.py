"""The generation views over the analytic (Gaussian) drift of the chosen dataset: Interpolant (teaching), Sample,
and Compare (two samplers on the same seed). Each is one ``pn.viewable.Viewer`` with figures built once; the
Studio hands them a ``Context`` (data, its analytic setup, the shared colour scale) whenever the dataset, noise
or schedule changes, and each redraws in place."""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import panel as pn
import param
import torch
from bokeh.models import LinearColorMapper

from app.curie_weiss_panel import CurieWeissPanel
from app.input_check import checked
from app.lazy_tabs import LazyTabs
from app.mixture_panel import MixturePanel
from app.plots import CurvePlot, FieldPlot, ImagePlot, shared_mapper
from engine.config import NoiseConfig, SamplerConfig
from engine.data.fields import FieldData, StateFieldData
from engine.data.io import netcdf_bytes
from engine.generation import Generated, Setup, generate_samples, time_grid
from engine.interpolants import GaussianModel, interpolate
from engine.noise import NOISE_KINDS, colour, noise_generator, noise_spectrum
from engine.oracle import drift_lipschitz, expected_drift_norm, snr_map
from engine.pipelines.sample import samples_dataset
from engine.spectral import radial_spectrum, shell_sum

SAMPLES = 32  # fields per generated batch: enough for a smooth spectrum, fast on 2 cores
GENERATION_SAMPLER_WIDGETS = {"seed": checked(pn.widgets.IntInput), "steps": checked(pn.widgets.IntInput)}
# the generation views sample the exact (analytic) drift: no network, so no precision or compile settings
GENERATION_SAMPLER_PARAMETERS = [name for name in SamplerConfig.param if name not in ("name", "precision", "compile")]
T_GRID = torch.linspace(0.0, 0.995, 200, dtype=torch.float64)

HEADER = "| | NFE | ms | spectral error | low | mid | high |\n|---|---|---|---|---|---|---|"


@dataclass
class Context:
    """What the generation views share: the dataset's chosen field, its analytic setup (or the chosen drift's), the
    noise choice, the device; and a generator of several fields' states of the dataset (``state``)."""

    data: FieldData
    setup: Setup
    data_spectrum: torch.Tensor
    noise: NoiseConfig
    device: torch.device
    state: StateFieldData | None = None


def shells(spectrum: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Shells 1..N/2 of a radial spectrum as plot arrays."""
    return np.arange(1, spectrum.shape[0]), spectrum[1:].numpy()


def metrics_row(label: str, result) -> str:
    e = result.errors
    return (f"| {label} | {result.nfe} | {result.seconds * 1e3:.1f} | {e['spectral_error']:.3f} | "
            f"{e['low_band_error']:.3f} | {e['mid_band_error']:.3f} | {e['high_band_error']:.3f} |")


def drift_name(setup: Setup) -> str:
    """How the metrics name a setup's drift: the exact one, or the checkpoint's run."""
    if setup.description.get("model") == "checkpoint":
        return f"trained drift ({Path(setup.description['checkpoint']).parent.name})"
    return "analytic drift"


def one_field(result: Generated, setup: Setup, field: str) -> Generated:
    """Generated states' ``field`` with its errors under the plain names (and the states' coherence error); one
    field's samples as they are."""
    if not setup.variables:
        return result
    errors = {key: result.errors[f"{field}_{key}"] for key in result.errors if f"{field}_{key}" in result.errors}
    return Generated(result.samples[:, setup.variables.index(field)], result.nfe, result.seconds,
                     {**errors, "coherence_error": result.errors["coherence_error"]})


def sample_batch(context: Context, sampler: SamplerConfig) -> tuple[Generated, torch.Tensor, Generated]:
    """SAMPLES states from the context's drift (exact, or a trained one) with ``sampler``: the chosen field's
    samples, their radial spectrum, and the whole result (every field of a generator of several)."""
    result = generate_samples(context.setup, sampler, SAMPLES, context.device)
    field = one_field(result, context.setup, context.data.variable)
    return field, radial_spectrum(field.samples), result


SECTIONS = ("Along the path", "Drift per noise", "High dimension (paper 003)")


class InterpolantView(pn.viewable.Viewer):
    """Three sections, each built on its first visit: *along the path* (slide t: x_t between noise and data, its
    spectrum, which scales are decided when: the SNR over (t, k)); *drift per noise* (the drift's stiffness and
    its exact norm over t for white / power-law / matched noise); *high dimension* (paper 003's two-mode mixture
    and Curie–Weiss spins, with their own settings)."""

    t = param.Number(default=0.5, bounds=(0.0, 1.0), step=0.01, doc="interpolation time t")

    def __init__(self, mapper: LinearColorMapper, seed: Callable[[], int], safely: Callable, **params):
        super().__init__(**params)
        self.mapper, self.seed, self.safely, self.context = mapper, seed, safely, None
        self.lipschitz = self.drift_norms = self.mixture = self.curie_weiss = None  # built on their first visit
        self.sections = LazyTabs(dict(zip(SECTIONS, (self._build_path, self._build_drift,
                                                     self._build_high_dimension))))

    @property
    def uses_generation_settings(self) -> bool:
        """Whether the open section depends on the dataset, noise and schedule (paper 003's models do not)."""
        return self.sections.shown != SECTIONS[2]

    def _build_path(self):
        self.x0_plot, self.xt_plot, self.x1_plot = (FieldPlot(title, self.mapper, 240)
                                                    for title in ("noise x0", "x_t", "data x1"))
        self.xt_spectrum = CurvePlot("spectra along the path", ["data", "noise", "x_t"], "wavenumber k", "S(k)")
        self.snr = ImagePlot("log10 signal-to-noise β²S_d / α²S_n over (t, k)", "t", "wavenumber k",
                             x_range=(0, 1), y_range=(1, 2))
        return pn.Column(pn.widgets.FloatSlider.from_param(self.param.t, width=400),
                         pn.FlexBox(self.x0_plot.figure, self.xt_plot.figure, self.x1_plot.figure),
                         pn.FlexBox(self.xt_spectrum.figure, self.snr.figure), sizing_mode="stretch_width")

    def _build_drift(self):
        self.lipschitz = CurvePlot("drift stiffness max_k |c_k(t)|", list(NOISE_KINDS), "t", "max gain", log_x=False)
        self.drift_norms = CurvePlot("exact drift norm ‖b(t, x_t)‖ per noise", list(NOISE_KINDS), "t",
                                     "RMS drift per pixel", log_x=False)
        if self.context is not None:
            self.safely(self._draw_drift)
        return pn.FlexBox(self.lipschitz.figure, self.drift_norms.figure, sizing_mode="stretch_width")

    def _build_high_dimension(self):
        self.mixture, self.curie_weiss = MixturePanel(), CurieWeissPanel()
        return pn.Column(self.mixture, self.curie_weiss, sizing_mode="stretch_width")

    @param.depends("t", watch=True)
    def _t_changed(self) -> None:
        self.safely(self.draw_path)

    def show(self, context: Context) -> None:
        """Redraw the built sections for a new dataset, noise or schedule."""
        self.context = context
        self.snr.figure.y_range.end = context.data.n // 2
        self.draw_path()
        snr = snr_map(context.setup.schedule, context.setup.noise_power, context.setup.data_power, T_GRID)
        self.snr.update(snr.numpy(), y0=1, dh=snr.shape[0])
        if self.lipschitz is not None:
            self._draw_drift()

    def draw_path(self) -> None:
        """x0, x_t = α(t) x0 + β(t) x1, x1, and the spectrum of x_t: α² S_n + β² S_d."""
        ctx = self.context
        if ctx is None:
            return
        white = torch.randn(1, ctx.data.n, ctx.data.n, generator=noise_generator(self.seed()))
        x0 = colour(white, ctx.setup.noise_power)
        x1 = ctx.data.fields[:1]
        c = ctx.setup.schedule(self.t)
        self.x0_plot.update(x0[0].numpy())
        self.xt_plot.update(interpolate(c, x0, x1)[0].numpy())
        self.x1_plot.update(x1[0].numpy())
        noise, data = shell_sum(ctx.setup.noise_power), shell_sum(ctx.setup.data_power)
        self.xt_spectrum.update("data", *shells(ctx.data_spectrum))
        self.xt_spectrum.update("noise", *shells(noise))
        self.xt_spectrum.update("x_t", *shells(c.alpha**2 * noise + c.beta**2 * data))

    def _draw_drift(self) -> None:
        """max_k |c_k(t)| and E‖b(t, x_t)‖ of the exact Gaussian drift for each noise kind, on this data."""
        ctx = self.context
        for kind in NOISE_KINDS:
            power = noise_spectrum(kind, ctx.data.n, ctx.data.spectrum, ctx.noise.exponent)
            model = GaussianModel(power, ctx.setup.data_power, ctx.setup.schedule)
            self.lipschitz.update(kind, T_GRID.numpy(), drift_lipschitz(model, T_GRID).numpy())
            self.drift_norms.update(kind, T_GRID.numpy(), expected_drift_norm(model, T_GRID).numpy())

    def controls(self) -> list:
        """The sidebar's part for the open section: paper 003's settings on its section, else none of its own."""
        if self.uses_generation_settings:
            return []
        return [*self.mixture.controls(), *self.curie_weiss.controls()]

    def __panel__(self):
        return self.sections


class SampleView(pn.viewable.Viewer):
    """Sampler A's fields beside the data, their spectrum against the data's and the noise's, band errors, and
    a netCDF download of the samples with their recipe."""

    def __init__(self, sampler: SamplerConfig, mapper: LinearColorMapper, **params):
        super().__init__(**params)
        self.sampler, self.context, self.result = sampler, None, None
        self.data_plot, self.sample_plot = FieldPlot("data", mapper), FieldPlot("generated", mapper)
        self.spectrum = CurvePlot("radial power spectrum", ["data", "noise", "generated"], "wavenumber k", "S(k)")
        self.metrics = pn.pane.Markdown("", name="sample-metrics")
        self.download = pn.widgets.FileDownload(callback=self._samples_file, filename="samples.nc",
                                                label="Download samples (netCDF)", width=260)

    def show(self, context: Context) -> None:
        """Generate SAMPLES fields with sampler A and redraw."""
        self.context = context
        *self.result, self.states = sample_batch(context, self.sampler)
        result, spectrum = self.result
        self.data_plot.update(context.data.fields[0].numpy())
        self.sample_plot.update(result.samples[0].numpy())
        self.spectrum.update("data", *shells(context.data_spectrum))
        self.spectrum.update("noise", *shells(shell_sum(context.setup.noise_power)))
        self.spectrum.update("generated", *shells(spectrum))
        states = (f" {context.data.variable} of states of {', '.join(context.setup.variables)}; coherence error "
                  f"{result.errors['coherence_error']:.3f}." if context.setup.variables else "")
        self.metrics.object = (f"Mean |log S_gen/S_data| over shells and bands, {drift_name(context.setup)}, "
                               f"{SAMPLES} samples.{states}\n\n{HEADER}\n{metrics_row('A', result)}")

    def _samples_file(self) -> io.BytesIO:
        """Sampler A's samples (every field of a generator of several) with their spectra, recipe and errors, as a
        netCDF file."""
        ctx = self.context
        data = ctx.state or ctx.data
        return io.BytesIO(netcdf_bytes(samples_dataset(self.states, data, ctx.setup, self.sampler, ctx.device)))

    def __panel__(self):
        return pn.Column(pn.FlexBox(self.data_plot.figure, self.sample_plot.figure, self.spectrum.figure),
                         self.metrics, self.download, sizing_mode="stretch_width")


class CompareView(pn.viewable.Viewer):
    """Sampler A (the sidebar's) against sampler B on the same seed: samples and their difference, spectra over
    the data's, band errors, NFE and time, and where each evaluates the drift along its norm over t."""

    sampler = param.ClassSelector(class_=SamplerConfig, doc="sampler B, compared with the sidebar's sampler A")

    def __init__(self, sample: SampleView, mapper: LinearColorMapper, **params):
        params.setdefault("sampler", SamplerConfig(name="Sampler B", method="sde", eps_shape="alpha2"))
        super().__init__(**params)
        self.sample = sample
        self.a_plot, self.b_plot = FieldPlot("sampler A", mapper), FieldPlot("sampler B", mapper)
        self.diff_plot = FieldPlot("A − B", shared_mapper(1.0))  # its own range, set from each difference
        self.spectrum = CurvePlot("spectra: A, B and the data", ["data", "A", "B"], "wavenumber k", "S(k)")
        self.drift_norm = CurvePlot("drift norm along the path, and where A and B evaluate it",
                                    ["‖b(t, x_t)‖", "A", "B"], "t", "RMS drift per pixel", log_x=False,
                                    markers=("A", "B"))
        self.metrics = pn.pane.Markdown("", name="compare-metrics")

    def show(self) -> None:
        """Run sampler B and redraw against sampler A's latest result."""
        ctx = self.sample.context
        if ctx is None:
            return
        (result_a, spectrum_a), (result_b, spectrum_b, _) = self.sample.result, sample_batch(ctx, self.sampler)
        self.a_plot.update(result_a.samples[0].numpy())
        self.b_plot.update(result_b.samples[0].numpy())
        difference = (result_a.samples[0] - result_b.samples[0]).numpy()
        limit = float(np.abs(difference).max()) or 1.0  # its own symmetric range: A and B share theirs
        self.diff_plot.mapper.update(low=-limit, high=limit)
        self.diff_plot.update(difference)
        self.spectrum.update("data", *shells(ctx.data_spectrum))
        self.spectrum.update("A", *shells(spectrum_a))
        self.spectrum.update("B", *shells(spectrum_b))
        self._update_drift_norm(ctx)
        self.metrics.object = (f"Same seed → same starting noise when seeds match.\n\n{HEADER}\n"
                               f"{metrics_row('A', result_a)}\n{metrics_row('B', result_b)}")

    def _update_drift_norm(self, ctx: Context) -> None:
        """The exact drift's RMS along the path (Gaussian data; the chosen field's of states of several), and its
        values at each sampler's grid times."""
        setup = ctx.setup
        powers = (setup.noise_power, setup.data_power)
        if setup.variables:
            powers = tuple(power[setup.variables.index(ctx.data.variable)] for power in powers)
        model = GaussianModel(*powers, setup.schedule)
        self.drift_norm.update("‖b(t, x_t)‖", T_GRID.numpy(), expected_drift_norm(model, T_GRID).numpy())
        for label, sampler in (("A", self.sample.sampler), ("B", self.sampler)):
            ts = time_grid(sampler, math.prod(setup.state_shape))[:-1]
            self.drift_norm.update(label, ts.numpy(), expected_drift_norm(model, ts).numpy())

    def __panel__(self):
        samplers = pn.FlexBox(
            pn.Param(self.sample.sampler, name="Sampler A", parameters=GENERATION_SAMPLER_PARAMETERS,
                     widgets=GENERATION_SAMPLER_WIDGETS, width=300),
            pn.Param(self.sampler, name="Sampler B", parameters=GENERATION_SAMPLER_PARAMETERS,
                     widgets=GENERATION_SAMPLER_WIDGETS, width=300))
        return pn.Column(samplers, pn.FlexBox(self.a_plot.figure, self.b_plot.figure, self.diff_plot.figure),
                         pn.FlexBox(self.spectrum.figure, self.drift_norm.figure), self.metrics,
                         sizing_mode="stretch_width")
