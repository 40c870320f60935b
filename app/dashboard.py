"""The Emulator Studio dashboard: data browser, interpolant teaching view, sampling, and a side-by-side
sampler comparison.

Every control is rendered from an ``engine.config`` class; every number comes from ``engine``. Plots are
built once and updated in place.
"""
from __future__ import annotations

import io
import os

import numpy as np
import panel as pn
import param
import torch

from app.data_view import DataView
from app.rollout_view import RolloutView
from app.superres_view import SuperresView
from app.train_view import TrainView
from app.plots import CurvePlot, FieldPlot, shared_mapper
from engine.config import MixtureConfig, NoiseConfig, SamplerConfig, ScheduleConfig
from engine.data.catalog import install_defaults
from engine.data.store import DataStore, load_fields, netcdf_bytes
from engine.errors import EngineError
from engine.generation import Setup, analytic_setup, generate, samples_dataset, time_grid
from engine.interpolants import GaussianModel, interpolate
from engine.jobs import manager
from engine.mixture import MIXTURE_SCHEDULES, TwoModeMixture, generate_mixture, mode_statistics
from engine.noise import NOISE_KINDS, colour, noise_generator, noise_spectrum
from engine.oracle import drift_lipschitz, expected_drift_norm
from engine.schedules import spectral_ratio_at_highest_wavenumber
from engine.spectral import radial_spectrum, shell_sum
from engine.training import resolve_device

POLL_MS = 100  # how often a session drains job events: up to 10 frames per second, as fast as workers send previews
SAMPLES = 32  # fields per generated batch: enough for a smooth spectrum, fast on 2 cores
# numbers that may be empty (None = "derive it") and seeds need typed inputs, not sliders
OPTIONAL_NUMBERS = {"r": pn.widgets.FloatInput, "sigma_max": pn.widgets.FloatInput}
SAMPLER_WIDGETS = {"seed": pn.widgets.IntInput, "steps": pn.widgets.IntInput}
T_GRID = torch.linspace(0.0, 0.995, 200, dtype=torch.float64)


def _shells(spectrum: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Shells 1..N/2 of a radial spectrum as plot arrays."""
    return np.arange(1, spectrum.shape[0]), spectrum[1:].numpy()


def field_datasets(store: DataStore) -> list[str]:
    """Datasets in the folder that hold fields (..., y, x), by name."""
    return [entry["name"] for entry in store.list()
            if any(tuple(sizes)[-2:] == ("y", "x") for sizes in entry.get("variables", {}).values())]


def smoothness_warning(setup: Setup) -> str:
    """Paper 000's condition: noise smoother than the data at the finest scale makes the drift stiff there."""
    r = spectral_ratio_at_highest_wavenumber(setup.data_power, setup.noise_power)
    if r > 1.5:
        return (f"The noise is smoother than the data at the finest scale (S_data/S_noise = {r:.3g} at k = N/2): "
                "the drift is unbounded there, so samplers need many steps and the error grows with resolution.")
    return ""


class Studio(pn.viewable.Viewer):
    """One browser session's dashboard over the chosen dataset."""

    t = param.Number(default=0.5, bounds=(0.0, 1.0), step=0.01, doc="interpolation time t")
    dataset = param.Selector(default=None, objects=[], doc="a field dataset in the data folder")

    def __init__(self, store: DataStore | None = None, **params):
        super().__init__(**params)
        self.store = store or DataStore()
        defaults = install_defaults(self.store)
        self.param.dataset.objects = field_datasets(self.store)
        self.dataset = defaults[0]
        self.data = load_fields(self.store.path(self.dataset))
        self.data_view = DataView(self.store, self.dataset)
        self.train_view = TrainView(self.store, manager(), lambda: self.dataset, lambda: (self.noise, self.schedule))
        self.rollout_view = RolloutView(self.store, manager(), lambda: self.dataset)
        self.superres_view = SuperresView(self.store, manager(), lambda: self.dataset)
        self.device = resolve_device(os.environ.get("EMULATOR_STUDIO_DEVICE", "auto"))  # set by launch.py --device
        self.noise, self.schedule = NoiseConfig(name="Noise"), ScheduleConfig(name="Schedule")
        self.sampler_a = SamplerConfig(name="Sampler A")
        self.sampler_b = SamplerConfig(name="Sampler B", method="sde", eps_shape="alpha2")
        self.data_spectrum = radial_spectrum(self.data.fields)
        self._build()
        self.refresh()
        for config in (self.noise, self.schedule):
            config.param.watch(lambda *_: self.refresh(), list(config.param.values().keys() - {"name"}))
        self.sampler_a.param.watch(lambda *_: self._safely(self._update_samples), list(self.sampler_a.param.values().keys() - {"name"}))
        self.sampler_b.param.watch(lambda *_: self._safely(self._update_compare), list(self.sampler_b.param.values().keys() - {"name"}))
        self.param.watch(lambda *_: self._safely(self._update_interpolant), "t")
        self.param.watch(lambda *_: self._safely(self._switch_dataset), "dataset")
        self.mixture = MixtureConfig(name="Two-mode mixture (paper 003)")
        self.mixture_table = pn.pane.Markdown("", name="mixture-table")
        self.mixture.param.watch(lambda *_: self._safely(self._update_mixture), ["d", "p", "sigma2", "steps", "count"])
        self._safely(self._update_mixture)

    # ----- layout -------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.mapper, self.diff_mapper = shared_mapper(1.0), shared_mapper(1.0)
        self._set_colour_range()
        mapper = self.mapper
        self.alert = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width")
        self.dataset_info = pn.pane.Markdown("", name="dataset-info")
        self.error = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        # Interpolant (teaching)
        self.x0_plot, self.xt_plot, self.x1_plot = (FieldPlot(t, mapper, 240) for t in
                                                    ("noise x0", "x_t", "data x1"))
        self.xt_spectrum = CurvePlot("spectra along the path", ["data", "noise", "x_t"], "wavenumber k", "S(k)")
        self.lipschitz = CurvePlot("drift stiffness max_k |c_k(t)|", list(NOISE_KINDS), "t", "max gain",
                                   log_x=False)
        self.snr_source, self.snr_figure = self._snr_figure()
        # Sample
        self.data_plot, self.sample_plot = FieldPlot("data", mapper), FieldPlot("generated", mapper)
        self.sample_spectrum = CurvePlot("radial power spectrum", ["data", "noise", "generated"], "wavenumber k", "S(k)")
        self.sample_metrics = pn.pane.Markdown("", name="sample-metrics")
        self.sample_download = pn.widgets.FileDownload(callback=self._samples_file, filename="samples.nc",
                                                       label="Download samples (netCDF)", width=260)
        # Compare
        self.a_plot, self.b_plot = FieldPlot("sampler A", mapper), FieldPlot("sampler B", mapper)
        self.diff_plot = FieldPlot("A − B", self.diff_mapper)
        self.compare_spectrum = CurvePlot("spectra: A, B and the data", ["data", "A", "B"], "wavenumber k", "S(k)")
        self.drift_norm = CurvePlot("drift norm along the path, and where A and B evaluate it",
                                    ["‖b(t, x_t)‖", "A", "B"], "t", "RMS drift per pixel", log_x=False,
                                    markers=("A", "B"))
        self.compare_metrics = pn.pane.Markdown("", name="compare-metrics")

    def _set_colour_range(self) -> None:
        limit = 3 * float(self.data.fields.std())
        self.mapper.update(low=-limit, high=limit)
        self.diff_mapper.update(low=-limit / 3, high=limit / 3)

    def _snr_figure(self):
        from bokeh.models import ColorBar, ColumnDataSource, LinearColorMapper
        from bokeh.palettes import Viridis256
        from bokeh.plotting import figure

        mapper = LinearColorMapper(palette=Viridis256, low=-8, high=8)
        source = ColumnDataSource({"image": [np.zeros((2, 2))], "dw": [1], "dh": [1]})
        fig = figure(title="log10 signal-to-noise β²S_d / α²S_n over (t, k)", width=420, height=300,
                     x_axis_label="t", y_axis_label="wavenumber k", toolbar_location=None, x_range=(0, 1),
                     y_range=(1, self.data.n // 2))
        fig.image("image", x=0, y=1, dw="dw", dh="dh", color_mapper=mapper, source=source)
        fig.add_layout(ColorBar(color_mapper=mapper, width=8), "right")
        return source, fig

    def __panel__(self):
        sidebar = pn.Column(
            pn.widgets.Select.from_param(self.param.dataset, name="Dataset"), self.dataset_info,
            pn.Param(self.noise, widgets={"kind": pn.widgets.RadioButtonGroup}, name="Noise spectrum"),
            pn.Param(self.schedule, name="Interpolation schedule", widgets=OPTIONAL_NUMBERS),
            pn.Param(self.sampler_a, name="Sampler A", widgets=SAMPLER_WIDGETS),
            width=320)
        interpolant = pn.Column(
            pn.widgets.FloatSlider.from_param(self.param.t, width=600),
            pn.Row(self.x0_plot.figure, self.xt_plot.figure, self.x1_plot.figure),
            pn.Row(self.xt_spectrum.figure, self.lipschitz.figure, self.snr_figure),
            pn.Row(pn.Param(self.mixture, widgets={"d": pn.widgets.IntInput, "steps": pn.widgets.IntInput,
                                                   "count": pn.widgets.IntInput}, width=280), self.mixture_table))
        sample = pn.Column(pn.Row(self.data_plot.figure, self.sample_plot.figure, self.sample_spectrum.figure),
                           self.sample_metrics, self.sample_download)
        compare = pn.Row(
            pn.Column(pn.Row(self.a_plot.figure, self.b_plot.figure, self.diff_plot.figure),
                      pn.Row(self.compare_spectrum.figure, self.drift_norm.figure), self.compare_metrics),
            pn.Param(self.sampler_b, name="Sampler B", widgets=SAMPLER_WIDGETS, width=280))
        tabs = pn.Tabs(("Data", self.data_view), ("Interpolant", interpolant), ("Sample", sample), ("Compare", compare),
                       ("Train", self.train_view), ("Rollout", self.rollout_view),
                       ("Super-resolution", self.superres_view), dynamic=False)
        pn.state.onload(lambda: pn.state.add_periodic_callback(self._poll_jobs, period=POLL_MS))
        # a plain layout rather than a template: templates pull web fonts, and the studio must work offline
        header = pn.pane.HTML("<h2 style='margin:4px 0'>Emulator Studio</h2>", sizing_mode="stretch_width",
                              styles={"background": "#1f4e79", "color": "white", "padding": "4px 12px"})
        return pn.Column(header, pn.Row(sidebar, pn.Column(self.alert, self.error, tabs)), sizing_mode="stretch_width")

    # ----- updates ------------------------------------------------------------------------------------
    def _poll_jobs(self) -> None:
        """Drain the followed jobs' events into the views; an error is shown, and the callback keeps running."""
        try:
            self.train_view.poll()
            self.rollout_view.poll()
            self.superres_view.poll()
        except Exception as err:  # a periodic callback that raises stops silently: report and go on
            self.error.object, self.error.visible = f"**Live update failed:** {type(err).__name__}: {err}", True

    def _safely(self, update) -> None:
        """Run an update; a bad combination shows its reason in place instead of breaking the page."""
        try:
            update()
            self.error.visible = False
        except (EngineError, ValueError) as err:
            self.error.object = f"**Could not compute:** {err}"
            self.error.visible = True

    def _switch_dataset(self) -> None:
        """Load the chosen dataset for every view; its spectrum defines matched noise and the analytic drift."""
        self.data = load_fields(self.store.path(self.dataset))
        self.data_spectrum = radial_spectrum(self.data.fields)
        self._set_colour_range()
        self.snr_figure.y_range.end = self.data.n // 2
        self.data_view.open(self.dataset)
        self.superres_view._safely(self.superres_view.open_model)
        self.refresh()

    def refresh(self) -> None:
        def everything():
            self.dataset_info.object = (f"`{self.data.attrs.get('generator', 'imported')}` · "
                                        f"{self.data.fields.shape[0]} fields of `{self.data.variable}` · {self.data.n}²")
            self.setup = analytic_setup(self.data, self.noise, self.schedule)
            warning = smoothness_warning(self.setup)
            self.alert.object, self.alert.visible = warning, bool(warning)
            self._update_interpolant()
            self._update_teaching_curves()
            self._update_samples()

        self._safely(everything)

    def _path_fields(self) -> tuple[torch.Tensor, torch.Tensor]:
        generator = noise_generator(self.sampler_a.seed)
        x0 = colour(torch.randn(1, self.data.n, self.data.n, generator=generator), self.setup.noise_power)
        return x0, self.data.fields[:1]

    def _update_interpolant(self) -> None:
        x0, x1 = self._path_fields()
        xt = interpolate(self.setup.schedule(self.t), x0, x1)
        self.x0_plot.update(x0[0].numpy())
        self.xt_plot.update(xt[0].numpy())
        self.x1_plot.update(x1[0].numpy())
        self.xt_spectrum.update("data", *_shells(self.data_spectrum))
        self.xt_spectrum.update("noise", *_shells(shell_sum(self.setup.noise_power)))
        c = self.setup.schedule(self.t)
        expected = c.alpha**2 * shell_sum(self.setup.noise_power) + c.beta**2 * shell_sum(self.setup.data_power)
        self.xt_spectrum.update("x_t", *_shells(expected))

    def _update_teaching_curves(self) -> None:
        for kind in NOISE_KINDS:
            power = noise_spectrum(kind, self.data.n, self.data.spectrum, self.noise.exponent)
            model = GaussianModel(power, self.setup.data_power, self.setup.schedule)
            self.lipschitz.update(kind, T_GRID.numpy(), drift_lipschitz(model, T_GRID).numpy())
        c = self.setup.schedule(T_GRID)
        noise, data = shell_sum(self.setup.noise_power)[1:], shell_sum(self.setup.data_power)[1:]
        snr = torch.log10((c.beta[None, :] ** 2 * data[:, None]) / (c.alpha[None, :] ** 2 * noise[:, None] + 1e-300) + 1e-300)
        self.snr_source.data = {"image": [snr.clamp(-8, 8).numpy()], "dw": [1.0], "dh": [float(data.shape[0])]}

    def _run(self, sampler: SamplerConfig):
        result = generate(self.setup, sampler, SAMPLES, self.device)
        spectrum = radial_spectrum(result.samples)
        return result, spectrum

    @staticmethod
    def _metrics(label: str, result) -> str:
        e = result.errors
        return (f"| {label} | {result.nfe} | {result.seconds * 1e3:.1f} | {e['spectral_error']:.3f} | "
                f"{e['low_band_error']:.3f} | {e['mid_band_error']:.3f} | {e['high_band_error']:.3f} |")

    HEADER = ("| | NFE | ms | spectral error | low | mid | high |\n|---|---|---|---|---|---|---|")

    def _update_samples(self) -> None:
        result, spectrum = self._run(self.sampler_a)
        self.data_plot.update(self.data.fields[0].numpy())
        self.sample_plot.update(result.samples[0].numpy())
        self.sample_spectrum.update("data", *_shells(self.data_spectrum))
        self.sample_spectrum.update("noise", *_shells(shell_sum(self.setup.noise_power)))
        self.sample_spectrum.update("generated", *_shells(spectrum))
        self.sample_metrics.object = ("Mean |log S_gen/S_data| over shells and bands, analytic drift, "
                                      f"{SAMPLES} samples.\n\n{self.HEADER}\n{self._metrics('A', result)}")
        self._result_a = (result, spectrum)
        self._update_compare()

    def _samples_file(self) -> io.BytesIO:
        """Sampler A's samples with their spectrum, recipe and errors, as a netCDF file."""
        result, _ = self._result_a
        return io.BytesIO(netcdf_bytes(samples_dataset(result, self.data, self.setup, self.sampler_a)))

    def _update_mixture(self) -> None:
        """p̂ and σ̂² from Euler on the exact mixture drift, for VP, VE and their time-dilated versions."""
        cfg = self.mixture
        mixture = TwoModeMixture(cfg.d, cfg.p, cfg.sigma2)
        rows = []
        for kind in MIXTURE_SCHEDULES:
            p_hat, sigma2_hat = mode_statistics(generate_mixture(mixture, kind, cfg.steps, cfg.count))
            rows.append(f"| {kind} | {p_hat:.3f} | {sigma2_hat:.3g} |")
        self.mixture_table.object = (
            f"**Which features survive {cfg.steps} Euler steps in d = {cfg.d}?** Mode weight p̂ (high-level) and "
            f"within-mode variance σ̂² (low-level) of the generated samples.\n\n| schedule | p̂ | σ̂² |\n|---|---|---|\n"
            f"| truth | {cfg.p:.3f} | {cfg.sigma2:.3g} |\n" + "\n".join(rows) +
            "\n\nUniform VP gets σ² but not p (the weights are decided near β ~ 1/√d, between two grid points); "
            "VE gets p but not σ²; time dilation spends half the steps where each is decided.")

    def _update_drift_norm(self) -> None:
        """The exact drift's RMS along the path (Gaussian data), and its values at each sampler's grid times."""
        model = GaussianModel(self.setup.noise_power, self.setup.data_power, self.setup.schedule)
        self.drift_norm.update("‖b(t, x_t)‖", T_GRID.numpy(), expected_drift_norm(model, T_GRID).numpy())
        for label, sampler in (("A", self.sampler_a), ("B", self.sampler_b)):
            ts = time_grid(sampler, self.data.n)[:-1]
            self.drift_norm.update(label, ts.numpy(), expected_drift_norm(model, ts).numpy())

    def _update_compare(self) -> None:
        result_a, spectrum_a = getattr(self, "_result_a", None) or self._run(self.sampler_a)
        result_b, spectrum_b = self._run(self.sampler_b)
        self.a_plot.update(result_a.samples[0].numpy())
        self.b_plot.update(result_b.samples[0].numpy())
        self.diff_plot.update((result_a.samples[0] - result_b.samples[0]).numpy())
        self.compare_spectrum.update("data", *_shells(self.data_spectrum))
        self.compare_spectrum.update("A", *_shells(spectrum_a))
        self.compare_spectrum.update("B", *_shells(spectrum_b))
        self._update_drift_norm()
        self.compare_metrics.object = (f"Same seed → same starting noise when seeds match.\n\n{self.HEADER}\n"
                                       f"{self._metrics('A', result_a)}\n{self._metrics('B', result_b)}")
