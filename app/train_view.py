"""The Train view: start, cancel (pause) and resume a training job on the chosen dataset, and watch its loss
curve, progress, and what the model generates at every checkpoint, live."""
from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import panel as pn
import param
from bokeh.palettes import Category10

from app.input_check import checked
from app.job_view import JobView
from app.plots import CurvePlot, FieldPlot, shared_mapper, stretching
from engine.checkpoints import group_members, list_runs, load_checkpoint, run_settings, settings_diff
from engine.config import ForecastConfig, ModelConfig, NoiseConfig, PDDConfig, ScheduleConfig, TrainingConfig
from engine.data.store import DataStore
from engine.distributed import max_local_processes
from engine.errors import EngineError
from engine.jobs import JobManager
from engine.pipelines.train import MAX_SEEDS, TrainRequest
from engine.tasks import TASKS

RUN_COLOURS = Category10[10][1:]  # the picked runs' lines (the first colour is close to the live run's)
TRAINING_WIDGETS = {**dict.fromkeys(("steps", "batch_size", "seed", "checkpoint_every", "log_every"),
                                    checked(pn.widgets.IntInput)),
                    **dict.fromkeys(("max_seconds", "lr", "ema_decay"), checked(pn.widgets.FloatInput))}  # 0.999 shown
SHOWN_TRAINING = ["steps", "batch_size", "lr", "spectral_weight", "ema_decay", "checkpoint_every", "log_every",
                  "max_seconds", "seed", "device", "precision", "compile"]


def ema_continue(values: list[float], weight: float, state: tuple[float, int]) -> tuple[list[float], tuple]:
    """Debiased EMA of ``values`` continuing from ``state = (sum, count)``: s_i = w s_(i-1) + (1 − w) x_i, shown as
    s_i / (1 − w^i) so the curve starts on the data instead of at 0; returns the smoothed values and the new state."""
    total, count = state
    out = []
    for value in values:
        total, count = weight * total + (1 - weight) * value, count + 1
        out.append(total / (1 - weight**count) if weight < 1 else value)
    return out, (total, count)


def differences_table(settings: dict[str, dict]) -> str:
    """A markdown table of the settings in which the picked runs differ (``engine.checkpoints.settings_diff``)."""
    if len(settings) < 2:
        return "Pick two or more runs under *Overlay runs* to see the settings in which they differ." if settings \
            else ""
    diff = settings_diff(settings)
    if not diff:
        return "The picked runs were trained with the same settings."
    runs = list(settings)
    header = "| setting | " + " | ".join(runs) + " |\n|---|" + "---|" * len(runs) + "\n"
    return "**Settings that differ**\n\n" + header + "\n".join(
        f"| {key} | " + " | ".join(str(row[run]) for run in runs) + " |" for key, row in diff.items())


class TrainView(JobView):
    """One training job at a time per browser session; the job itself runs in a worker process."""

    label, start_label, stop_label, button_width, request_type = "Training", "Start", "Cancel", 90, TrainRequest
    status_name = "train-status"
    ended = {"cancelled": "cancelled: Resume continues from its checkpoint", "failed": "failed"}
    task = param.Selector(default="generate", objects=list(TASKS), doc="what to train (see docs/dashboard.md)")
    run_name = param.String(default="my-run", doc="run folder runs/<name> in the data folder; resume continues it")
    seeds = param.Integer(default=1, bounds=(1, MAX_SEEDS), label="Seeds",
                          doc="train this many seeds of the configuration as one group (runs/<name>/seed-0, …, "
                              "training seeds Seed, Seed + 1, …); the Rollout tab rolls the group out and draws the "
                              "spread of its VRMSE over the seeds")
    nproc = param.Integer(default=1, bounds=(1, max_local_processes()), label="Processes",
                          doc="local processes training data-parallel (gloo on CPU, nccl with one per GPU); the batch "
                              "size is the global batch they split")
    smoothing = param.Number(default=0.9, bounds=(0.0, 0.99), step=0.01, label="Smoothing (EMA weight)",
                             doc="w of the smoothed loss s_i = w s_(i-1) + (1 − w) loss_i, debiased by 1 − w^i "
                                 "(TensorBoard's); 0 shows the raw loss")
    log_loss = param.Boolean(default=True, label="Log-scale loss", doc="the loss axis on a log scale")
    field = param.Selector(default=None, objects=[], label="Field",
                           doc="the field of the model's output drawn, for a model of several fields")
    compare = param.ListSelector(default=[], objects=[], label="Overlay runs",
                                 doc="runs whose loss curves are drawn beside this one, with the settings that differ")

    def __init__(self, store: DataStore, jobs: JobManager, *, dataset: Callable[[], str],
                 generation_configs: Callable[[], tuple[NoiseConfig, ScheduleConfig]], device: str = "auto",
                 **params):
        super().__init__(jobs, **params)
        self.store, self.dataset, self.generation_configs = store, dataset, generation_configs
        self.model = ModelConfig(name="Model")
        self.training = TrainingConfig(name="Training", steps=600, log_every=10, checkpoint_every=100, device=device)
        self.forecast = ForecastConfig(name="Emulator")
        self.pdd = PDDConfig(name="PDD predictor")
        self.resume, self.ema = False, (0.0, 0)  # the live smoothed loss: (EMA sum, points)
        self.last_preview: dict | None = None
        self.field_select = pn.widgets.Select.from_param(self.param.field, label="Field of the preview", visible=False,
                                                         sizing_mode="stretch_width")
        self.seed_shown = 0  # the group member whose loss is drawn
        self.loss = CurvePlot("training loss", ["loss", "smoothed"], "step", "loss", log_x=False, height=280,
                              empty="the loss, live, once training starts", row_item=False)
        self.loss.figure.select_one({"name": "loss"}).glyph.line_alpha = 0.3  # raw: kept, faint
        self.differences = pn.pane.Markdown("", name="run-differences", sizing_mode="stretch_width")
        self.preview = FieldPlot("model output at the last checkpoint", shared_mapper(3.0), 260,
                                 empty="a sample at every checkpoint")
        self.spectrum = CurvePlot("spectra at the last checkpoint", ["data", "model"], "wavenumber k", "S(k)",
                                  height=280, empty="its spectrum against the data's")
        self.progress = pn.indicators.Progress(value=0, max=100, width=300, label="progress")
        self.runs = pn.pane.Markdown("", name="runs")
        self.resume_button = pn.widgets.Button(label="Resume", width=90)
        self.resume_button.on_click(lambda _: pn.state.execute(partial(self.start, resume=True), schedule=True))
        self.download = pn.widgets.FileDownload(callback=self._checkpoint_file, filename="checkpoint.pt",
                                                label="Download checkpoint", width=200)
        self.refresh_runs()

    def _checkpoint_file(self):
        """The run's checkpoint (weights, EMA, optimizer, configs): loadable with torch.load(weights_only=True)."""
        self.download.filename = f"{self.run_name}-checkpoint.pt"
        return str(self.store.path(f"runs/{self.run_name}/checkpoint.pt"))

    def request(self) -> TrainRequest:
        noise, schedule = self.generation_configs()
        return TrainRequest(task=self.task, data=self.dataset(), out=f"runs/{self.run_name}", resume=self.resume,
                            seeds=self.seeds, model=self.model, training=self.training, forecast=self.forecast,
                            pdd=self.pdd, noise=noise, schedule=schedule, previews=True)

    def placement(self) -> dict:
        return {**super().placement(), "nproc": self.nproc}

    def start(self, resume: bool = False) -> None:
        """Submit the job: a new run starts over, resume continues the run folder's checkpoint."""
        self.resume = resume
        super().start()

    def prepare(self) -> None:
        if not self.run_name or Path(self.run_name).name != self.run_name:
            raise EngineError(f"run name {self.run_name!r} must be a plain folder name")
        if not self.resume:
            folder = self.store.path(f"runs/{self.run_name}")
            for checkpoint in [folder / "checkpoint.pt", *group_members(folder)]:  # a group's members start over too
                checkpoint.unlink(missing_ok=True)
            self.loss.clear()
            self.ema, self.seed_shown = (0.0, 0), 0

    def stop(self) -> None:
        super().stop()
        if self.job is not None:
            self.status.object = f"{self.label} job {self.job.id}: cancelling (a checkpoint is kept; Resume continues)…"

    def _show_progress(self, events: list[dict]) -> None:
        seed = events[-1].get("seed", 0)
        if seed != self.seed_shown:  # a group's next member: its own curve from step 0
            events = [e for e in events if e.get("seed", 0) == seed]
            self.loss.clear()
            self.ema, self.seed_shown = (0.0, 0), seed
        steps = [e["step"] for e in events]
        losses = [e["loss"] for e in events]
        smoothed, self.ema = ema_continue(losses, self.smoothing, self.ema)
        self.loss.extend("loss", steps, losses)
        self.loss.extend("smoothed", steps, smoothed)
        last = events[-1]
        self.progress.value = int(100 * last["step"] / last["steps"])
        rate = last.get("steps_per_second") or float("nan")
        eta = (last["steps"] - last["step"]) / rate if rate > 0 else float("nan")
        where = f"{self.label} job {self.job.id}: step {last['step']} / {last['steps']}" + (
            f" of seed {seed + 1} / {self.seeds}" if self.seeds > 1 else "")
        self.status.object = (f"{where} · loss {last['loss']:.4g} · {rate:.1f} steps/s · ETA {eta:.0f} s"
                              if math.isfinite(eta) else where)

    def _show_event(self, event: dict) -> None:
        if event["kind"] != "preview":
            return
        self.last_preview = event
        variables = event.get("variables") or []
        self.param.field.objects = variables
        self.field_select.visible = len(variables) > 1
        if variables and self.field not in variables:
            self.field = variables[0]  # redraws through _field_changed
        else:
            self._draw_preview()

    @param.depends("field", watch=True)
    def _field_changed(self) -> None:
        if self.last_preview is not None:
            self._draw_preview()

    def _draw_preview(self) -> None:
        """The last preview's field (the chosen one of a state of several) and its spectra against the data's."""
        event = self.last_preview
        field, spectrum, data_spectrum = event["field"], event["spectrum"], event["data_spectrum"]
        if event.get("variables"):
            c = event["variables"].index(self.field)
            field, spectrum, data_spectrum = field[c], spectrum[c], data_spectrum[c]
        limit = 3 * float(np.std(field)) or 1.0
        self.preview.figure.renderers[0].glyph.color_mapper.update(low=-limit, high=limit)
        self.preview.update(field)
        name = self.field if event.get("variables") else None
        self.preview.figure.title.text = "model output at the last checkpoint" + (f": {name}" if name else "")
        shells = np.arange(1, len(spectrum))
        self.spectrum.update("data", shells, data_spectrum[1:])
        self.spectrum.update("model", shells, spectrum[1:])

    def _show_result(self, result: dict) -> None:
        self.status.object = f"{self.label} job {self.job.id} finished."

    def _after_job(self) -> None:
        self.refresh_runs()

    @param.depends("smoothing", watch=True)
    def _smoothing_changed(self) -> None:
        """Smooth the live curve and the overlaid runs again with the new weight."""
        raw = self.loss.sources["loss"].data
        smoothed, self.ema = ema_continue(list(raw["y"]), self.smoothing, (0.0, 0))
        self.loss.update("smoothed", raw["x"], smoothed)
        self._draw_compared()

    @param.depends("log_loss", watch=True)
    def _log_changed(self) -> None:
        self.loss.set_log_y(self.log_loss)

    @param.depends("compare", watch=True)
    def _draw_compared(self) -> None:
        """The picked runs' smoothed loss over the live one, and a table of the settings in which they differ."""
        settings = {}
        for index, run in enumerate(self.param.compare.objects):
            shown = run in self.compare
            state = load_checkpoint(self.store.path(f"runs/{run}/checkpoint.pt")) if shown else None
            if state is not None:
                settings[run] = run_settings(state)
                history = np.asarray(state.get("history") or [[0, np.nan]], dtype=np.float64)
                smoothed, _ = ema_continue(list(history[:, 1]), self.smoothing, (0.0, 0))
            if not shown and f"run {run}" not in self.loss.sources:
                continue
            self.loss.line(f"run {run}", RUN_COLOURS[index % len(RUN_COLOURS)]).visible = shown
            if shown:
                self.loss.update(f"run {run}", history[:, 0], smoothed)
        self.differences.object = differences_table(settings)

    def refresh_runs(self) -> None:
        rows = list_runs(self.store.root)
        self.param.compare.objects = [row["run"] for row in rows]
        self.download.disabled = not any(row["run"] == self.run_name for row in rows)
        header = "| run | task | step | loss | model | data |\n|---|---|---|---|---|---|\n"
        lines = "\n".join(f"| {r['run']} | {r['task']} | {r['step']} | {r['loss']} | {r['model']} | {r['data']} |"
                          for r in rows)
        self.runs.object = f"**Checkpoints** (runs/ in the data folder)\n\n{header}{lines}" if rows else \
            "No checkpoints yet."

    def controls(self) -> list:
        """The sidebar's part for this view: the task, the run, the model and the training options."""
        stretch = {"sizing_mode": "stretch_width"}
        return [pn.widgets.Select.from_param(self.param.task, label="Task", **stretch),
                pn.widgets.TextInput.from_param(self.param.run_name, label="Run name", **stretch),
                pn.widgets.IntInput.from_param(self.param.nproc, start=None, end=None, **stretch),
                pn.widgets.IntInput.from_param(self.param.seeds, start=None, end=None, **stretch),
                pn.Param(self.model, parameters=["size"], show_name=False, **stretch),
                pn.Param(self.training, parameters=SHOWN_TRAINING, widgets=TRAINING_WIDGETS, name="Training",
                         **stretch),
                pn.Param(self.forecast, parameters=["sigma", "lead", "unroll", "levels"],
                         name="Emulator (forecast and sns tasks)", **stretch),
                pn.Param(self.pdd, widgets={"a": checked(pn.widgets.FloatInput)}, name="PDD predictor (task pdd)",
                         **stretch),
                self.field_select]

    def __panel__(self):
        return pn.Column(
            pn.FlexBox(self.start_button, self.stop_button, self.resume_button, self.progress, self.download),
            self.status, self.failure, self.job_settings,
            pn.FlexBox(pn.Column(self.loss.figure, pn.Row(
                pn.widgets.FloatSlider.from_param(self.param.smoothing, width=220),
                pn.widgets.Checkbox.from_param(self.param.log_loss, align="end")), sizing_mode="stretch_width",
                **stretching(520)),
                self.preview.figure, self.spectrum.figure),
            pn.FlexBox(pn.Column(self.runs, width=520),
                       pn.Column(pn.widgets.MultiChoice.from_param(self.param.compare, width=400), self.differences,
                                 width=420)),
            sizing_mode="stretch_width")
