"""The generation views over the analytic (Gaussian) drift of the chosen dataset: Interpolant (teaching), Sample,
and Compare (two samplers on the same seed). Each is one ``pn.viewable.Viewer`` with figures built once; the
Studio hands them a ``Context`` (data, its analytic setup, the shared colour scale) whenever the dataset, noise
or schedule changes, and each redraws in place."""
from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from typing import Callable

import numpy as np
import panel as pn
import param
import torch
from bokeh.models import LinearColorMapper

from app.busy import in_background
from app.curie_weiss_panel import CurieWeissPanel, mark, verdict
from app.plots import CurvePlot, FieldPlot, ImagePlot, draw_steps_against_d, shared_mapper
from engine.config import MixtureConfig, NoiseConfig, SamplerConfig
from engine.data.store import FieldData, netcdf_bytes
from engine.generation import Setup, generate_samples, time_grid
from engine.interpolants import GaussianModel, interpolate
from engine.mixture import (
    MIXTURE_SCHEDULES,
    P_TOLERANCE,
    SIGMA2_TOLERANCE,
    TwoModeMixture,
    dimension_sweep,
    generate_mixture,
    mode_statistics,
    recovered,
)
from engine.noise import NOISE_KINDS, colour, noise_generator, noise_spectrum
from engine.oracle import drift_lipschitz, expected_drift_norm, snr_map
from engine.pipelines.sample import samples_dataset
from engine.spectral import radial_spectrum, shell_sum

SAMPLES = 32  # fields per generated batch: enough for a smooth spectrum, fast on 2 cores
GENERATION_SAMPLER_WIDGETS = {"seed": pn.widgets.IntInput, "steps": pn.widgets.IntInput}
T_GRID = torch.linspace(0.0, 0.995, 200, dtype=torch.float64)
SWEEP_DIMENSIONS = (100, 1000, 10_000, 100_000)


@functools.lru_cache(maxsize=64)
def mixture_outcomes(d: int, p: float, sigma2: float, steps: int, count: int, dilation_k: float) -> tuple:
    """Per schedule: (kind, p̂, σ̂², p recovered, σ² recovered) of ``count`` seeded Euler samples on the exact mixture
    drift (``engine.mixture``), computed once per setting per server."""
    mixture = TwoModeMixture(d, p, sigma2)
    outcomes = []
    for kind in MIXTURE_SCHEDULES:
        p_hat, sigma2_hat = mode_statistics(generate_mixture(mixture, kind, steps, count, dilation_k=dilation_k))
        outcomes.append((kind, p_hat, sigma2_hat, *recovered(mixture, p_hat, sigma2_hat)))
    return tuple(outcomes)


@functools.lru_cache(maxsize=16)
def cached_sweep(p: float, sigma2: float, dilation_k: float) -> dict:
    """The d-sweep of ``engine.mixture.dimension_sweep``, computed once per (p, σ², k) per server."""
    return dimension_sweep(p=p, sigma2=sigma2, dimensions=SWEEP_DIMENSIONS, dilation_k=dilation_k)
HEADER = "| | NFE | ms | spectral error | low | mid | high |\n|---|---|---|---|---|---|---|"


@dataclass
class Context:
    """What the generation views share: the dataset, its analytic setup, the noise choice, the device."""

    data: FieldData
    setup: Setup
    data_spectrum: torch.Tensor
    noise: NoiseConfig
    device: torch.device


def shells(spectrum: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Shells 1..N/2 of a radial spectrum as plot arrays."""
    return np.arange(1, spectrum.shape[0]), spectrum[1:].numpy()


def metrics_row(label: str, result) -> str:
    e = result.errors
    return (f"| {label} | {result.nfe} | {result.seconds * 1e3:.1f} | {e['spectral_error']:.3f} | "
            f"{e['low_band_error']:.3f} | {e['mid_band_error']:.3f} | {e['high_band_error']:.3f} |")


def sample_batch(context: Context, sampler: SamplerConfig):
    """SAMPLES fields from the exact drift with ``sampler``, and their radial spectrum."""
    result = generate_samples(context.setup, sampler, SAMPLES, context.device)
    return result, radial_spectrum(result.samples)


class InterpolantView(pn.viewable.Viewer):
    """Slide t: x_t between noise and data, its spectrum, which scales are decided when (SNR over (t, k)), the
    drift's stiffness and its exact norm over t for white / power-law / matched noise, and paper 003's two-mode
    mixture and Curie–Weiss spins."""

    t = param.Number(default=0.5, bounds=(0.0, 1.0), step=0.01, doc="interpolation time t")
    mixture = param.ClassSelector(class_=MixtureConfig, doc="paper 003's two-mode mixture")

    def __init__(self, mapper: LinearColorMapper, seed: Callable[[], int], safely: Callable, **params):
        super().__init__(mixture=MixtureConfig(name="Two-mode mixture (paper 003)"), **params)
        self.seed, self.safely, self.context = seed, safely, None
        self.mixture_table = pn.pane.Markdown("", name="mixture-table")
        self.x0_plot, self.xt_plot, self.x1_plot = (FieldPlot(title, mapper, 240)
                                                    for title in ("noise x0", "x_t", "data x1"))
        self.xt_spectrum = CurvePlot("spectra along the path", ["data", "noise", "x_t"], "wavenumber k", "S(k)")
        self.lipschitz = CurvePlot("drift stiffness max_k |c_k(t)|", list(NOISE_KINDS), "t", "max gain", log_x=False)
        self.drift_norms = CurvePlot("exact drift norm ‖b(t, x_t)‖ per noise", list(NOISE_KINDS), "t",
                                     "RMS drift per pixel", log_x=False)
        self.snr = ImagePlot("log10 signal-to-noise β²S_d / α²S_n over (t, k)", "t", "wavenumber k",
                             x_range=(0, 1), y_range=(1, 2))
        self.sweep = CurvePlot("Euler steps to recover p and σ² vs d (paper 003)", list(MIXTURE_SCHEDULES),
                               "dimension d", "steps", markers=tuple(MIXTURE_SCHEDULES), height=300,
                               empty="press the button: steps per schedule vs d")
        self.sweep_button = pn.widgets.Button(label="Sweep d = 10² … 10⁵", width=200)
        self.sweep_button.on_click(lambda _: self.start_sweep())
        self.sweep_note = pn.pane.Markdown("Press the button to measure how the step count grows with d "
                                           "(a few seconds; cached per p, σ², k).", name="sweep-note")
        self.curie_weiss = CurieWeissPanel()
        self._update_mixture()

    @param.depends("t", watch=True)
    def _t_changed(self) -> None:
        self.safely(self.draw_path)

    @param.depends("mixture.param", watch=True)
    def _mixture_changed(self) -> None:
        self._update_mixture()

    def show(self, context: Context) -> None:
        """Redraw everything for a new dataset, noise or schedule."""
        self.context = context
        self.snr.figure.y_range.end = context.data.n // 2
        self.draw_path()
        self._update_teaching_curves()

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

    def _update_teaching_curves(self) -> None:
        ctx = self.context
        for kind in NOISE_KINDS:
            power = noise_spectrum(kind, ctx.data.n, ctx.data.spectrum, ctx.noise.exponent)
            model = GaussianModel(power, ctx.setup.data_power, ctx.setup.schedule)
            self.lipschitz.update(kind, T_GRID.numpy(), drift_lipschitz(model, T_GRID).numpy())
            self.drift_norms.update(kind, T_GRID.numpy(), expected_drift_norm(model, T_GRID).numpy())
        snr = snr_map(ctx.setup.schedule, ctx.setup.noise_power, ctx.setup.data_power, T_GRID)
        self.snr.update(snr.numpy(), y0=1, dh=snr.shape[0])

    def _update_mixture(self) -> None:
        """Measure the mixture table in a thread (the tab opens at once; the table shows a busy state meanwhile)."""
        cfg = self.mixture
        key = (cfg.d, cfg.p, cfg.sigma2, cfg.steps, cfg.count, cfg.dilation_k)
        self.mixture_table.loading = True
        in_background(lambda: mixture_outcomes(*key), lambda outcomes: self._draw_mixture(key, outcomes),
                      self._mixture_failed)

    def _draw_mixture(self, key: tuple, outcomes: tuple) -> None:
        """p̂ and σ̂² for VP, VE and their time-dilated versions, and which features each recovers
        (``engine.mixture.recovered``): the text is read off the numbers."""
        d, p, sigma2, steps = key[:4]
        rows = [f"| {kind} | {p_hat:.3f} {mark(got_p)} | {sigma2_hat:.3g} {mark(got_sigma2)} |"
                for kind, p_hat, sigma2_hat, got_p, got_sigma2 in outcomes]
        verdicts = [verdict(kind, {"p": got_p, "σ²": got_sigma2}) for kind, _, _, got_p, got_sigma2 in outcomes]
        self.mixture_table.object = (
            f"**Which features survive {steps} Euler steps in d = {d}?** Mode weight p̂ (high-level) and "
            f"within-mode variance σ̂² (low-level) of the generated samples; ✓ within {P_TOLERANCE} of p and "
            f"{SIGMA2_TOLERANCE:.0%} of σ².\n\n| schedule | p̂ | σ̂² |\n|---|---|---|\n"
            f"| truth | {p:.3f} | {sigma2:.3g} |\n" + "\n".join(rows) +
            f"\n\nHere {'; '.join(verdicts)}. Paper 003: a uniform VP grid needs O(√d) steps for p (the weights are "
            "decided near β ~ 1/√d), a uniform VE grid O(√d) for σ² (decided when the noise is ~σ), and time "
            "dilation, which spends half its steps where each is decided, a number that does not grow with d.")
        self.mixture_table.loading = False

    def _mixture_failed(self, message: str) -> None:
        self.mixture_table.object = f"**The mixture could not be sampled:** {message}"
        self.mixture_table.loading = False

    def start_sweep(self) -> None:
        """Measure the d-sweep in a thread (the page stays live) and draw it when done."""
        cfg = self.mixture
        self.sweep_button.loading = True
        key = (cfg.p, cfg.sigma2, cfg.dilation_k)
        in_background(lambda: cached_sweep(*key), lambda steps: self._draw_sweep(key, steps), self._sweep_failed)

    def _draw_sweep(self, key: tuple, steps: dict) -> None:
        draw_steps_against_d(self.sweep, SWEEP_DIMENSIONS, steps)
        self.sweep_note.object = (f"p = {key[0]}, σ² = {key[1]}, k = {key[2]}: steps that recover both features "
                                  "(✓ as in the table). Uniform grids grow like √d, dilated ones stay flat.")
        self.sweep_button.loading = False

    def _sweep_failed(self, message: str) -> None:
        self.sweep_note.object = f"**The sweep could not run:** {message}"
        self.sweep_button.loading = False

    def controls(self) -> list:
        """The sidebar's part for this view: paper 003's mixture and Curie–Weiss spins."""
        return [pn.Param(self.mixture, widgets={"d": pn.widgets.IntInput, "steps": pn.widgets.IntInput,
                                                "count": pn.widgets.IntInput}, sizing_mode="stretch_width"),
                *self.curie_weiss.controls()]

    def __panel__(self):
        return pn.Column(
            pn.widgets.FloatSlider.from_param(self.param.t, width=400),
            pn.FlexBox(self.x0_plot.figure, self.xt_plot.figure, self.x1_plot.figure),
            pn.FlexBox(self.xt_spectrum.figure, self.lipschitz.figure, self.snr.figure, self.drift_norms.figure),
            pn.FlexBox(pn.Column(self.mixture_table, width=420),
                       pn.Column(self.sweep_button, self.sweep_note, self.sweep.figure, width=420)),
            self.curie_weiss, sizing_mode="stretch_width")


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
        self.result = sample_batch(context, self.sampler)
        result, spectrum = self.result
        self.data_plot.update(context.data.fields[0].numpy())
        self.sample_plot.update(result.samples[0].numpy())
        self.spectrum.update("data", *shells(context.data_spectrum))
        self.spectrum.update("noise", *shells(shell_sum(context.setup.noise_power)))
        self.spectrum.update("generated", *shells(spectrum))
        self.metrics.object = ("Mean |log S_gen/S_data| over shells and bands, analytic drift, "
                               f"{SAMPLES} samples.\n\n{HEADER}\n{metrics_row('A', result)}")

    def _samples_file(self) -> io.BytesIO:
        """Sampler A's samples with their spectrum, recipe and errors, as a netCDF file."""
        result, _ = self.result
        ctx = self.context
        return io.BytesIO(netcdf_bytes(samples_dataset(result, ctx.data, ctx.setup, self.sampler)))

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
        (result_a, spectrum_a), (result_b, spectrum_b) = self.sample.result, sample_batch(ctx, self.sampler)
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
        """The exact drift's RMS along the path (Gaussian data), and its values at each sampler's grid times."""
        model = GaussianModel(ctx.setup.noise_power, ctx.setup.data_power, ctx.setup.schedule)
        self.drift_norm.update("‖b(t, x_t)‖", T_GRID.numpy(), expected_drift_norm(model, T_GRID).numpy())
        for label, sampler in (("A", self.sample.sampler), ("B", self.sampler)):
            ts = time_grid(sampler, ctx.data.n)[:-1]
            self.drift_norm.update(label, ts.numpy(), expected_drift_norm(model, ts).numpy())

    def __panel__(self):
        samplers = pn.FlexBox(
            pn.Param(self.sample.sampler, name="Sampler A", widgets=GENERATION_SAMPLER_WIDGETS, width=300),
            pn.Param(self.sampler, name="Sampler B", widgets=GENERATION_SAMPLER_WIDGETS, width=300))
        return pn.Column(samplers, pn.FlexBox(self.a_plot.figure, self.b_plot.figure, self.diff_plot.figure),
                         pn.FlexBox(self.spectrum.figure, self.drift_norm.figure), self.metrics,
                         sizing_mode="stretch_width")
