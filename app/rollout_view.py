"""The Rollout view: roll a trained emulator out from the dataset's first trajectory, live: truth beside the
emulated field (both sent by the worker), the spectrum-vs-time image, VRMSE vs lead time, C(τ), R(t), and the
blow-up step. The request is ``engine.pipelines.rollout.run_rollout``; the view only checks that the data fits
before a worker starts."""
from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Callable

import numpy as np
import panel as pn
import param
from bokeh.models import LinearColorMapper
from bokeh.palettes import Viridis256

from app.input_check import checked
from app.job_view import JobView
from app.plots import LINE_COLOURS, CurvePlot, FieldPlot, ImagePlot, shared_mapper
from engine.animation import ffmpeg_executable, write_animation
from engine.checkpoints import list_groups, list_runs
from engine.config import ForecastSamplerConfig, RolloutConfig, options
from engine.data.fields import field_std, field_variable
from engine.data.sequences import datasets_for
from engine.data.store import DataStore
from engine.errors import EngineError
from engine.forecast import FORECAST_TASKS
from engine.jobs import JobManager
from engine.pipelines.rollout import RolloutRequest, check_rollout_request, rollout_variables

NONE = "(none)"
SEED_BAND = "min–max over seeds"  # a group's VRMSE band
ROLLOUT_CONTROLS = ["steps", "members", "refine_every", "renoise", "refine_steps", "blowup", "device"]
INTEGER_CONTROLS = ["steps", "members", "refine_every", "refine_steps"]
MAX_COLUMNS = 400  # the spectrum-vs-time image keeps at most this many time columns while live
SPECTROGRAM_SECONDS = 0.2  # while live, the spectrum-vs-time image (up to 50 KB) is redrawn at most 5 times a second;
# the fields every frame


def colour_range(ds, variable: str) -> tuple[float, float]:
    """A field's colour range as (centre, half-width): its first snapshot's mean and 3 of its stds."""
    first = ds[variable].isel({dim: 0 for dim in ds[variable].dims[:-2]})
    return float(first.mean()), 3 * field_std(ds, variable)


def checkpoints(store: DataStore) -> dict[str, list[dict]]:
    """Run checkpoints of 2-D fields by role (``list_runs`` rows): emulators (forecast tasks, SNS and PDD, and groups
    of emulators trained from several seeds, by their folder) and refiners (generators and SNS). Predictors of 1-D
    Lorenz-96 states are left out: the views draw fields (``benchmarks/pdd.py`` and the ledger use them)."""
    runs = [run for run in list_runs(store.root) if run["ndim"] == 2]
    groups = [row for row in list_groups(store.root) if row["task"] in FORECAST_TASKS]  # trained with --seeds
    return {"emulators": [r for r in runs if r["task"] in (*FORECAST_TASKS, "pdd")] + groups,
            "pdd": [r for r in runs if r["task"] == "pdd"],
            "refiners": [r for r in runs if r["task"] in ("generate", "refiner", "sns")]}


def fitting_data(store: DataStore, run: dict) -> list[str]:
    """The datasets an emulator applies to: trajectories on its grid saved at its Δt (``datasets_for``) that hold
    every field it was trained on."""
    if not run.get("n") or not run.get("dt"):
        return []
    return [name for name in datasets_for(store, run["n"], run["dt"])
            if set(run["variables"]) <= set(store.describe(name).get("variables", {}))]


def refiner_choices(refiners: list[dict], emulator: dict | None) -> dict[str, str]:
    """The refiner control's options, {label: path}: none, then those trained on the emulator's grid and fields,
    then the others, labelled as refused (another system's refiner fades the field)."""
    def fits(run: dict) -> bool:
        return emulator is None or (run.get("n") == emulator.get("n") and run["variables"] == emulator["variables"])

    fitting = {run["path"]: run["path"] for run in refiners if fits(run)}
    others = {f"{run['path']} (trained on {', '.join(run['variables'])} of {run['data'] or 'other data'}: refused)":
              run["path"] for run in refiners if not fits(run)}
    return {NONE: NONE, **fitting, **others}


class RolloutView(JobView):
    """A rollout job per browser session, drawn as its events arrive."""

    label, start_label, request_type = "Rollout", "Roll out", RolloutRequest
    status_name, idle_text = "rollout-status", "Pick an emulator and press Roll out."
    checkpoint = param.Selector(default=None, objects=[], doc="a trained emulator (forecast, noise_baseline, "
                                                              "diffusion, ddpm, pointwise, fno, sns, or a PDD "
                                                              "predictor at λ)")
    refiner = param.Selector(default=NONE, objects=[NONE],
                             doc="a generator trained with --task refiner (spectral-estimate Thermalizer), an SNS pair "
                                 "denoiser (--task sns, paper 004), or none")
    field = param.Selector(default=None, objects=[], doc="the field of the emulator's state that is drawn, with its "
                                                         "own colour range, spectra and scores")
    data = param.Selector(default=None, objects=[], doc="the test trajectories: those on the emulator's grid, saved "
                                                        "at its Δt, with its fields (the sidebar's dataset when it "
                                                        "fits)")

    def __init__(self, store: DataStore, jobs: JobManager, dataset: Callable[[], str], *, device: str = "auto",
                 lam: Callable[[], float] = lambda: 0.0, scheduler: Callable[[], str | None] = lambda: None,
                 **params):
        super().__init__(jobs, **params)
        self.preferred_field: Callable[[], str] = lambda: ""  # the field to draw when an emulator's state has it
        self.store, self.dataset, self.lam, self.scheduler, self.pdd = store, dataset, lam, scheduler, []
        self.sampler = ForecastSamplerConfig(name="Sampler")
        self.config = RolloutConfig(name="Rollout", steps=100, members=2, refine_every=0, save_every=1, device=device)
        self.columns, self.spectrogram_drawn = [], 0.0  # the spectra (every field's) of the last steps drawn
        self.ranges: dict[str, tuple[float, float]] = {}  # each field's colour range: mean ± 3 std
        self.last_event: dict | None = None  # the last progress drawn and the result: redrawn for another field
        self.last_result: dict | None = None
        self.mapper = shared_mapper(1.0)
        self.truth_plot = FieldPlot("truth", self.mapper, 260, empty="the test trajectory, as the rollout runs")
        self.emulator_plot = FieldPlot("emulator (member 0)", self.mapper, 260,
                                       empty="the emulated field, live")
        self.spectrogram = ImagePlot("log10 power spectrum vs step", "step", "wavenumber k", width=420, height=260,
                                     empty="the emulator's spectrum at every step, live",
                                     mapper=LinearColorMapper(palette=Viridis256, low=-8, high=2))
        self.vrmse = CurvePlot("VRMSE vs lead time", ["this run", "previous"], "lead (steps)", "VRMSE", log_x=False,
                               empty="VRMSE per lead step, when the rollout ends",
                               log_y=False, height=260)
        self.correlation = CurvePlot("C(τ) at r = 0", ["truth", "emulator"], "τ (model time), per-pair normalized",
                                     "C", log_x=False, empty="C(τ) of truth and emulator, when the rollout ends",
                                     log_y=False, height=260)
        self.rate = CurvePlot("R(t) = ‖Δu/Δt‖₁", ["truth", "emulator"], "model time", "R", log_x=False, log_y=False,
                              empty="R(t) of truth and emulator, when the rollout ends",
                              height=260)
        self.calibration = CurvePlot("ensemble calibration vs lead time", ["CRPS / σ_data", "spread / skill"],
                                     "lead (steps)", "score", log_x=False, log_y=False, height=260,
                                     empty="CRPS and spread–skill per lead (2+ members), when the rollout ends")
        self.download = pn.widgets.FileDownload(callback=self._rollout_file, filename="rollout.nc", disabled=True,
                                                label="Download rollout (netCDF)", width=240)
        self.animations = [pn.widgets.FileDownload(callback=lambda suffix=suffix: self._animation_file(suffix),
                                                   filename=f"rollout{suffix}", disabled=True, width=200,
                                                   label=f"Download animation ({suffix[1:].upper()})")
                           for suffix in (".gif", ".mp4") if suffix == ".gif" or ffmpeg_executable()]
        self.refresh_checkpoints()

    def refresh_checkpoints(self) -> None:
        found = checkpoints(self.store)
        self.runs = {run["path"]: run for run in found["emulators"] + found["refiners"]}
        self.refiners = found["refiners"]
        self.pdd = [run["path"] for run in found["pdd"]]
        emulators = [run["path"] for run in found["emulators"]]
        self.param.checkpoint.objects = emulators
        if self.checkpoint in emulators:
            self._emulator_changed()  # the same emulator: its data and refiners may have changed
        else:  # the SI forecaster first, when there is one (its watcher picks the data and refiners)
            preferred = [name for name in emulators if "si-forecaster" in name]
            self.checkpoint = (preferred or emulators or [None])[0]

    @param.depends("checkpoint", watch=True)
    def _emulator_changed(self) -> None:
        """The test data and refiners that fit the chosen emulator (the sidebar's dataset when it fits, else the
        first that does; refiners of other systems listed apart) and the fields of its state."""
        run = self.runs.get(self.checkpoint) if self.checkpoint else None
        fitting = fitting_data(self.store, run) if run else []
        self.param.data.objects = fitting
        sidebar = self.dataset()
        self.data = sidebar if sidebar in fitting else (fitting[0] if fitting else None)
        self.param.refiner.objects = refiner_choices(self.refiners, run)
        if self.refiner not in self.param.refiner.objects.values():
            self.refiner = NONE
        fields = list(run.get("variables") or []) if run else []
        wanted = self.preferred_field()  # before the choices change: the Field widget may pick their first
        if fields != self.param.field.objects:  # another state: the last rollout's frames are not of its fields
            self.columns, self.last_event, self.last_result = [], None, None
        self.param.field.objects = fields
        if wanted in fields:
            self.field = wanted
        elif self.field not in fields:
            self.field = fields[0] if fields else None

    def follow_sidebar(self) -> None:
        """The sidebar's dataset changed: take it when the emulator applies to it."""
        if self.dataset() in self.param.data.objects:
            self.data = self.dataset()

    def test_data(self) -> str:
        """The dataset the rollout runs on: the chosen one, else (none fits) the sidebar's, which is then refused
        with the Δt or fields the emulator needs."""
        return self.data or self.dataset()

    def _rollout_file(self):
        """The rollout shown (states, per-step spectra, recipe) as its job wrote it into ``rollouts/``."""
        return str(self.store.path(self.last_result["out"]))

    def _animation_file(self, suffix: str) -> str | None:
        """The finished rollout as an animation, truth beside member 0 (written once beside the netCDF)."""
        rollout = self.store.path(self.last_result["out"])
        path = rollout.with_suffix(suffix)
        if not path.exists():
            try:
                with self.store.open(self.last_result["out"]) as ds:
                    write_animation(ds, path)
            except EngineError as err:
                self.fail(str(err))
                return None
        return str(path)

    def request(self) -> RolloutRequest:
        lam = self.lam() if self.checkpoint in self.pdd else 0.0
        return RolloutRequest(checkpoint=self.checkpoint, data=self.test_data(),
                              out=f"rollouts/rollout-{uuid.uuid4().hex[:8]}.nc",
                              refiner=None if self.refiner == NONE else self.refiner,
                              config=RolloutConfig(**{**options(self.config), "lam": lam}), sampler=self.sampler,
                              scheduler=self.scheduler() or None)

    def prepare(self) -> None:
        """Refuse data the emulator does not apply to before a worker starts; set the colour range and keep the
        last run's VRMSE as "previous"."""
        self.refresh_checkpoints()
        if self.checkpoint is None:
            raise EngineError("no trained emulator yet: train one in the Train view (task forecast or pointwise)")
        data = self.test_data()
        check_rollout_request(store=self.store, checkpoint=self.checkpoint, data=data)
        self._set_fields(self.checkpoint, data)
        previous = self.vrmse.sources["this run"].data
        self.vrmse.update("previous", previous["x"], previous["y"])
        for button in (self.download, *self.animations):
            button.disabled = True

    def _set_fields(self, checkpoint: str, data: str) -> None:
        """The fields a rollout of ``checkpoint`` on ``data`` draws (the Field control's choices) and their colour
        ranges; the drawings of an earlier rollout are forgotten."""
        names = rollout_variables(store=self.store, checkpoint=checkpoint, data=data, variables=None)
        with self.store.open(data) as ds:
            names = names or (field_variable(ds, None, data),)
            self.ranges = {name: colour_range(ds, name) for name in names}
        self.param.field.objects = list(names)
        if self.field not in names:
            self.field = names[0]
        self._set_range()
        self.columns, self.spectrogram_drawn, self.last_event, self.last_result = [], 0.0, None, None

    def follow(self, job, own: bool = True) -> None:
        """A job this page did not start draws the fields of its own emulator and data."""
        if not own:
            self.guarded(lambda: self._set_fields(job.request.checkpoint, job.request.data))
        super().follow(job, own)

    def _of_field(self, values, axis: int = 0) -> np.ndarray:
        """The drawn field's part of values that hold every field of the state along ``axis`` (as they are for a
        state of one field)."""
        values = np.asarray(values)
        names = self.param.field.objects
        return values if len(names) < 2 else np.take(values, names.index(self.field), axis=axis)

    def _set_range(self) -> None:
        if self.field in self.ranges:
            mean, limit = self.ranges[self.field]
            self.mapper.update(low=mean - limit, high=mean + limit)

    @param.depends("field", watch=True)
    def _redraw_field(self) -> None:
        """Another field chosen: its colour range, its last frames, spectra and scores."""
        self._set_range()
        if self.last_event is not None:
            self._draw_frames(self.last_event)
            self._draw_live_spectrogram(self.last_event["step"])
        if self.last_result is not None:
            self._show_result(self.last_result)

    def _draw_frames(self, last: dict) -> None:
        self.emulator_plot.update(self._of_field(last["preview"]))
        if last.get("truth") is not None:
            self.truth_plot.update(self._of_field(last["truth"]))
            self.truth_plot.figure.title.text = "truth"
        elif self.truth_plot.figure.title.text == "truth":  # the test trajectory is shorter than the rollout
            self.truth_plot.figure.title.text = f"truth (the test data end before step {last['step']})"

    def _show_progress(self, events: list[dict]) -> None:
        last = self.last_event = events[-1]
        self._draw_frames(last)
        self.columns = [*self.columns, *(e["spectrum"] for e in events)][-MAX_COLUMNS:]
        now = time.monotonic()
        if now - self.spectrogram_drawn >= SPECTROGRAM_SECONDS:
            self.spectrogram_drawn = now
            self._draw_live_spectrogram(last["step"])
        self.status.object = f"Rollout job {self.job.id}: step {last['step']} / {last['steps']}"

    def _draw_live_spectrogram(self, steps: int) -> None:
        """The drawn field's spectrum at each of the last steps (the columns kept while live)."""
        spectra = np.stack([self._of_field(spectrum) for spectrum in self.columns], 1)
        self._draw_spectrogram(np.log10(np.maximum(spectra[1:], 1e-30)), steps)

    def _draw_spectrogram(self, image: np.ndarray, steps: int) -> None:
        self.spectrogram.update(image, dw=max(steps, 1), dh=image.shape[0])

    def _show_result(self, result: dict) -> None:
        """The finished rollout: downloads, the drawn field's spectrogram, scores, C(τ) and R(t) (of a state of
        several fields, the chosen field's; the status line gives their mean)."""
        self.last_result = result
        scores = result.get("per_variable", {}).get(self.field, result)
        statistics = result.get("per_variable_statistics", {}).get(self.field, result)
        data_std = self._of_field(result["data_std"])
        stored = Path(result["out"])  # the download is named as the file in the data folder (rollouts/<name>)
        for button, suffix in zip((self.download, *self.animations), (".nc", ".gif", ".mp4")):
            button.disabled, button.filename = False, stored.with_suffix(suffix).name
        spectra = np.log10(np.maximum(self._of_field(result["spectra"], axis=1)[:, 1:], 1e-30)).T
        self._draw_spectrogram(spectra, result["steps_done"])
        self._draw_vrmse(scores, result.get("group"))
        self.calibration.update("CRPS / σ_data", scores["lead_steps"], np.asarray(scores["crps"]) / data_std)
        self.calibration.update("spread / skill", scores["lead_steps"],
                                np.asarray(scores["spread_skill"], dtype=float))
        times = statistics["saved_time"]
        dt = (times[1] - times[0]) if len(times) > 1 else 1.0
        for name in ("truth", "emulator"):
            lags = np.arange(len(statistics["correlation"][name])) * dt
            self.correlation.update(name, lags, statistics["correlation"][name])
            if "rate" in statistics:
                self.rate.update(name, np.asarray(times[1:len(statistics["rate"][name]) + 1]), statistics["rate"][name])
        blowup = result["blowup_step"]
        self.status.object = (f"Rollout job {self.job.id}: {result['steps_done']} steps in {result['seconds']:.1f} s. "
                              + (f"**Blow-up at step {blowup}** ({result['stop_reason']}); the plots keep what was "
                                 "computed before it." if blowup is not None else "No blow-up.")
                              + (f" Consecutive-state pairs: sliced W₁ to the truth's {result['transition_w1']:.3g}."
                                 if result.get("transition_w1") is not None else "")
                              + (f" A group of {result['group']['seeds']} seeds: the VRMSE line is their mean, the "
                                 "band their range; the other plots show seed 0." if "group" in result else ""))

    def _draw_vrmse(self, scores: dict, group: dict | None) -> None:
        """VRMSE by lead: of this rollout, or of a group of seeds their mean with the min–max band over the seeds
        (the drawn field's, for a state of several fields)."""
        if group is None:
            self.vrmse.update("this run", scores["lead_steps"], scores["vrmse"])
            if SEED_BAND in self.vrmse.sources:  # an earlier group's band
                self.vrmse.band(SEED_BAND, [], [], [])
            return
        spread = group.get("per_variable", {}).get(self.field, group)["vrmse"]
        self.vrmse.update("this run", group["lead_steps"], spread["mean"])
        self.vrmse.band(SEED_BAND, group["lead_steps"], spread["min"], spread["max"], LINE_COLOURS["this run"])

    def controls(self) -> list:
        """The sidebar's part for this view: emulator, refiner, sampler and rollout options (λ is the sidebar's)."""
        stretch = {"sizing_mode": "stretch_width"}
        return [pn.widgets.Select.from_param(self.param.checkpoint, label="Emulator checkpoint", **stretch),
                pn.widgets.Select.from_param(self.param.data, label="Test data", **stretch),
                pn.widgets.Select.from_param(self.param.field, label="Field", **stretch),
                pn.widgets.Select.from_param(self.param.refiner, label="Refiner", **stretch),
                pn.Param(self.sampler, widgets=dict.fromkeys(("steps", "seed"), checked(pn.widgets.IntInput)),
                         **stretch),
                pn.Param(self.config, parameters=ROLLOUT_CONTROLS, widgets=dict.fromkeys(INTEGER_CONTROLS,
                                                                                         checked(pn.widgets.IntInput)),
                         **stretch)]

    def __panel__(self):
        return pn.Column(
            pn.FlexBox(self.start_button, self.stop_button, self.download, *self.animations), self.status,
            self.failure, self.job_settings,
            pn.FlexBox(self.truth_plot.figure, self.emulator_plot.figure, self.spectrogram.figure, self.vrmse.figure,
                       self.calibration.figure, self.correlation.figure, self.rate.figure),
            sizing_mode="stretch_width")
