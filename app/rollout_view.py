"""The Rollout view: roll a trained emulator out from the dataset's first trajectory, live: truth beside the
emulated field, the spectrum-vs-time image, VRMSE vs lead time, C(τ), R(t), and the blow-up step."""
from __future__ import annotations

import uuid

import numpy as np
import panel as pn
import param

from app.job_view import JobView, launch_device, run_table
from app.plots import CurvePlot, FieldPlot, shared_mapper
from engine.animation import ffmpeg_executable, write_animation
from engine.checkpoints import load_checkpoint
from engine.config import ForecastSamplerConfig, RolloutConfig, options
from engine.data.store import DataStore
from engine.errors import EngineError
from engine.forecast import FORECAST_TASKS, check_time_step, load_trajectories
from engine.jobs import JobManager

NONE = "(none)"
MAX_COLUMNS = 400  # the spectrum-vs-time image keeps at most this many time columns while live


def checkpoints(store: DataStore) -> dict[str, list[str]]:
    """Run checkpoints by role: emulators (forecast tasks) and generators (usable as refiners)."""
    runs = run_table(store)
    return {"emulators": [r["path"] for r in runs if r["task"] in (*FORECAST_TASKS, "pdd")],
            "generators": [r["path"] for r in runs if r["task"] in ("generate", "refiner")]}


class RolloutView(JobView):
    """A rollout job per browser session, drawn as its events arrive."""

    label = "Rollout"
    checkpoint = param.Selector(default=None, objects=[],
                                doc="a trained emulator (forecast, noise_baseline, pointwise, or a PDD predictor simulating at λ)")
    refiner = param.Selector(default=NONE, objects=[NONE], doc="a generator trained with --task refiner, or none")

    def __init__(self, store: DataStore, jobs: JobManager, dataset: callable, **params):
        super().__init__(**params)
        self.store, self.jobs, self.dataset = store, jobs, dataset
        self.sampler = ForecastSamplerConfig(name="Sampler")
        self.config = RolloutConfig(name="Rollout", steps=100, members=2, refine_every=0, save_every=1,
                                    device=launch_device())
        self.job, self.cursor, self.columns, self.truth, self.lead = None, 0, [], None, 1
        self.mapper = shared_mapper(1.0)
        self.truth_plot, self.emulator_plot = FieldPlot("truth", self.mapper, 260), FieldPlot("emulator (member 0)", self.mapper, 260)
        self.spectrogram_source, self.spectrogram = self._spectrogram()
        self.vrmse = CurvePlot("VRMSE vs lead time", ["this run", "previous"], "lead (steps)", "VRMSE", log_x=False,
                               log_y=False, height=260)
        self.correlation = CurvePlot("C(τ) at r = 0", ["truth", "emulator"], "τ (model time)", "C", log_x=False,
                                     log_y=False, height=260)
        self.rate = CurvePlot("R(t) = ‖Δu/Δt‖₁", ["truth", "emulator"], "model time", "R", log_x=False, log_y=False,
                              height=260)
        self.status = pn.pane.Markdown("Pick an emulator and press Roll out.", name="rollout-status")
        self.failure = pn.pane.Alert("", alert_type="danger", visible=False)
        self.download = pn.widgets.FileDownload(callback=self._rollout_file, filename="rollout.nc", disabled=True,
                                                label="Download rollout (netCDF)", width=240)
        self.animations = [pn.widgets.FileDownload(callback=lambda suffix=suffix: self._animation_file(suffix),
                                                   filename=f"rollout{suffix}", disabled=True, width=200,
                                                   label=f"Download animation ({suffix[1:].upper()})")
                           for suffix in (".gif", ".mp4") if suffix == ".gif" or ffmpeg_executable()]
        self._job_buttons("Roll out")
        self.refresh_checkpoints()

    def _spectrogram(self):
        from bokeh.models import ColorBar, ColumnDataSource, LinearColorMapper
        from bokeh.palettes import Viridis256
        from bokeh.plotting import figure

        mapper = LinearColorMapper(palette=Viridis256, low=-8, high=2)
        source = ColumnDataSource({"image": [np.zeros((2, 2), np.float32)], "dw": [1.0], "dh": [1.0]})
        fig = figure(title="log10 power spectrum vs step", width=420, height=260, x_axis_label="step",
                     y_axis_label="wavenumber k", toolbar_location=None, name="spectrum vs time")
        fig.image("image", x=0, y=0, dw="dw", dh="dh", color_mapper=mapper, source=source)
        fig.add_layout(ColorBar(color_mapper=mapper, width=8), "right")
        return source, fig

    def refresh_checkpoints(self) -> None:
        found = checkpoints(self.store)
        self.param.checkpoint.objects = found["emulators"]
        if self.checkpoint not in found["emulators"]:  # the SI forecaster first, when there is one
            preferred = [name for name in found["emulators"] if "si-forecaster" in name]
            self.checkpoint = (preferred or found["emulators"] or [None])[0]
        self.param.refiner.objects = [NONE, *found["generators"]]

    def _rollout_file(self):
        """The finished rollout (states, per-step spectra, recipe) as written by the job into ``rollouts/``."""
        return str(self.store.path(self.job.result["out"]))

    def _animation_file(self, suffix: str) -> str:
        """The finished rollout as an animation, truth beside member 0 (written once beside the netCDF)."""
        rollout = self.store.path(self.job.result["out"])
        path = rollout.with_suffix(suffix)
        if not path.exists():
            try:
                with self.store.open(self.job.result["out"]) as ds:
                    write_animation(ds, path)
            except EngineError as err:
                self._fail(str(err))
                return None
        return str(path)

    def options(self) -> dict:
        return {"checkpoint": self.checkpoint, "data": self.dataset(), "data_dir": str(self.store.root),
                "out": f"rollouts/rollout-{uuid.uuid4().hex[:8]}.nc",
                "refiner": None if self.refiner == NONE else self.refiner, "rollout": options(self.config),
                "forecast_sampler": options(self.sampler)}

    def start(self) -> None:
        if self._running():
            return
        self.refresh_checkpoints()
        if self.checkpoint is None:
            self._fail("no trained emulator yet: train one in the Train view (task forecast or pointwise)")
            return
        try:
            self.truth = load_trajectories(self.store.path(self.dataset()))
            trained = load_checkpoint(self.store.path(self.checkpoint))
            self.lead = trained["configs"].get("forecast", {}).get("lead", 1)
            check_time_step(trained["data"]["dt"], self.truth, self.checkpoint, self.store)
        except EngineError as err:
            self._fail(str(err))
            return
        limit = 3 * self.truth.std
        self.mapper.update(low=self.truth.mean - limit, high=self.truth.mean + limit)
        self.failure.visible, self.columns = False, []
        previous = self.vrmse.sources["this run"].data
        self.vrmse.update("previous", previous["x"], previous["y"])
        for button in (self.download, *self.animations):
            button.disabled = True
        self._submit("rollout")

    def _truth_frame(self, step: int) -> np.ndarray | None:
        index = self.config.start + step * self.lead
        fields = self.truth.fields
        return None if index >= fields.shape[1] else self.truth.denormalize(fields[0, index]).numpy()

    def _show_progress(self, events: list[dict]) -> None:
        last = events[-1]
        self.emulator_plot.update(last["preview"])
        truth = self._truth_frame(last["step"])
        if truth is not None:
            self.truth_plot.update(truth)
        self.columns.extend(np.log10(np.maximum(e["spectrum"][1:], 1e-30)) for e in events)
        self._draw_spectrogram(np.stack(self.columns[-MAX_COLUMNS:], 1), last["step"])
        self.status.object = f"Rollout job {self.job.id}: step {last['step']} / {last['steps']}"

    def _draw_spectrogram(self, image: np.ndarray, steps: int) -> None:
        self.spectrogram_source.data = {"image": [image.astype(np.float32)], "dw": [float(max(steps, 1))],
                                        "dh": [float(image.shape[0])]}

    def _finish(self, event: dict) -> None:
        result = self._job_result(event)
        if result is None:
            return
        for button, suffix in zip((self.download, *self.animations), (".nc", ".gif", ".mp4")):
            button.disabled, button.filename = False, f"rollout-{self.job.id}{suffix}"
        spectra = np.log10(np.maximum(result["spectra"][:, 1:], 1e-30)).T
        self._draw_spectrogram(spectra, result["steps_done"])
        self.vrmse.update("this run", result["lead_steps"], result["vrmse"])
        dt = (result["saved_time"][1] - result["saved_time"][0]) if len(result["saved_time"]) > 1 else 1.0
        for name in ("truth", "emulator"):
            lags = np.arange(len(result["correlation"][name])) * dt
            self.correlation.update(name, lags, result["correlation"][name])
            if "rate" in result:
                self.rate.update(name, np.asarray(result["saved_time"][1:len(result["rate"][name]) + 1]),
                                 result["rate"][name])
        blowup = result["blowup_step"]
        self.status.object = (f"Rollout job {self.job.id}: {result['steps_done']} steps in {result['seconds']:.1f} s. "
                              + (f"**Blow-up at step {blowup}** ({result['stop_reason']}); the plots keep what was "
                                 "computed before it." if blowup is not None else "No blow-up."))

    def __panel__(self):
        controls = pn.Column(
            pn.widgets.Select.from_param(self.param.checkpoint, name="Emulator checkpoint"),
            pn.widgets.Select.from_param(self.param.refiner, name="Refiner"),
            pn.Param(self.sampler, widgets={"steps": pn.widgets.IntInput, "seed": pn.widgets.IntInput}, width=280),
            pn.Param(self.config, parameters=["steps", "members", "lam", "refine_every", "renoise", "blowup", "device"],
                     widgets={"steps": pn.widgets.IntInput, "members": pn.widgets.IntInput,
                              "refine_every": pn.widgets.IntInput, "lam": {"type": pn.widgets.FloatSlider, "step": 0.01}},
                     width=280),
            width=300)
        return pn.Row(controls, pn.Column(
            pn.Row(self.start_button, self.stop_button), pn.Row(self.download, *self.animations), self.status, self.failure,
            pn.Row(self.truth_plot.figure, self.emulator_plot.figure, self.spectrogram),
            pn.Row(self.vrmse.figure, self.correlation.figure, self.rate.figure)))
