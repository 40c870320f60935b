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

from app.job_view import JobView
from app.plots import CurvePlot, FieldPlot, shared_mapper
from engine.checkpoints import list_runs
from engine.config import ForecastConfig, ModelConfig, NoiseConfig, PDDConfig, ScheduleConfig, TrainingConfig, options
from engine.data.store import DataStore
from engine.errors import EngineError
from engine.jobs import JobManager
from engine.tasks import TASKS

SMOOTHING = 0.1  # EMA weight of the newest loss in the smoothed curve
TRAINING_WIDGETS = {"steps": pn.widgets.IntInput, "batch_size": pn.widgets.IntInput, "seed": pn.widgets.IntInput,
                    "checkpoint_every": pn.widgets.IntInput, "log_every": pn.widgets.IntInput,
                    "max_seconds": pn.widgets.FloatInput, "lr": pn.widgets.FloatInput}
SHOWN_TRAINING = ["steps", "batch_size", "lr", "spectral_weight", "ema_decay", "checkpoint_every", "log_every",
                  "max_seconds", "seed", "device"]


class TrainView(JobView):
    """One training job at a time per browser session; the job itself runs in a worker process."""

    label, kind, start_label, stop_label, button_width = "Training", "train", "Start", "Cancel", 90
    status_name = "train-status"
    ended = {"cancelled": "cancelled: Resume continues from its checkpoint", "failed": "failed"}
    task = param.Selector(default="generate", objects=list(TASKS), doc="what to train (see the README)")
    run_name = param.String(default="my-run", doc="run folder runs/<name> in the data folder; resume continues it")

    def __init__(self, store: DataStore, jobs: JobManager, *, dataset: Callable[[], str],
                 generation_configs: Callable[[], tuple[NoiseConfig, ScheduleConfig]], device: str = "auto",
                 **params):
        super().__init__(jobs, **params)
        self.store, self.dataset, self.generation_configs = store, dataset, generation_configs
        self.model = ModelConfig(name="Model")
        self.training = TrainingConfig(name="Training", steps=600, log_every=10, checkpoint_every=100, device=device)
        self.forecast = ForecastConfig(name="Emulator")
        self.pdd = PDDConfig(name="PDD predictor")
        self.smoothed, self.resume = None, False
        self.loss = CurvePlot("training loss", ["loss", "smoothed"], "step", "loss", log_x=False, height=280)
        self.preview = FieldPlot("model output at the last checkpoint", shared_mapper(3.0), 260)
        self.spectrum = CurvePlot("spectra at the last checkpoint", ["data", "model"], "wavenumber k", "S(k)",
                                  height=280)
        self.progress = pn.indicators.Progress(value=0, max=100, width=420, name="progress")
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

    def options(self) -> dict:
        noise, schedule = self.generation_configs()
        return {"task": self.task, "data": self.dataset(), "out": f"runs/{self.run_name}", "resume": self.resume,
                "data_dir": str(self.store.root), "model": options(self.model), "training": options(self.training),
                "forecast": options(self.forecast), "pdd": options(self.pdd), "noise": options(noise),
                "schedule": options(schedule)}

    def start(self, resume: bool = False) -> None:
        """Submit the job: a new run starts over, resume continues the run folder's checkpoint."""
        self.resume = resume
        super().start()

    def prepare(self) -> None:
        if not self.run_name or Path(self.run_name).name != self.run_name:
            raise EngineError(f"run name {self.run_name!r} must be a plain folder name")
        if not self.resume:
            (self.store.path(f"runs/{self.run_name}") / "checkpoint.pt").unlink(missing_ok=True)
            self.loss.clear()
            self.smoothed = None

    def stop(self) -> None:
        super().stop()
        if self.job is not None:
            self.status.object = f"{self.label} job {self.job.id}: cancelling (a checkpoint is kept; Resume continues)…"

    def _show_progress(self, events: list[dict]) -> None:
        steps = [e["step"] for e in events]
        losses = [e["loss"] for e in events]
        smoothed = []
        for value in losses:
            self.smoothed = value if self.smoothed is None else (1 - SMOOTHING) * self.smoothed + SMOOTHING * value
            smoothed.append(self.smoothed)
        self.loss.extend("loss", steps, losses)
        self.loss.extend("smoothed", steps, smoothed)
        last = events[-1]
        self.progress.value = int(100 * last["step"] / last["steps"])
        rate = last.get("steps_per_second") or float("nan")
        eta = (last["steps"] - last["step"]) / rate if rate > 0 else float("nan")
        where = f"{self.label} job {self.job.id}: step {last['step']} / {last['steps']}"
        self.status.object = (f"{where} · loss {last['loss']:.4g} · {rate:.1f} steps/s · ETA {eta:.0f} s"
                              if math.isfinite(eta) else where)

    def _show_event(self, event: dict) -> None:
        if event["kind"] != "preview":
            return
        field = event["field"]
        limit = 3 * float(np.std(field)) or 1.0
        self.preview.figure.renderers[0].glyph.color_mapper.update(low=-limit, high=limit)
        self.preview.update(field)
        shells = np.arange(1, len(event["spectrum"]))
        self.spectrum.update("data", shells, event["data_spectrum"][1:])
        self.spectrum.update("model", shells, event["spectrum"][1:])

    def _show_result(self, result: dict) -> None:
        self.status.object = f"{self.label} job {self.job.id} finished."

    def _after_job(self) -> None:
        self.refresh_runs()

    def refresh_runs(self) -> None:
        rows = list_runs(self.store.root)
        self.download.disabled = not any(row["run"] == self.run_name for row in rows)
        header = "| run | task | step | loss | model | data |\n|---|---|---|---|---|---|\n"
        lines = "\n".join(f"| {r['run']} | {r['task']} | {r['step']} | {r['loss']} | {r['model']} | {r['data']} |"
                          for r in rows)
        self.runs.object = f"**Checkpoints** (runs/ in the data folder)\n\n{header}{lines}" if rows else \
            "No checkpoints yet."

    def __panel__(self):
        controls = pn.Column(
            pn.widgets.Select.from_param(self.param.task, name="Task"),
            pn.widgets.TextInput.from_param(self.param.run_name, name="Run name"),
            pn.Param(self.model, parameters=["size"], show_name=False, width=280),
            pn.Param(self.training, parameters=SHOWN_TRAINING, widgets=TRAINING_WIDGETS, name="Training", width=280),
            pn.Param(self.forecast, parameters=["sigma", "lead", "unroll"], name="Emulator (forecast tasks)",
                     width=280),
            pn.Param(self.pdd, widgets={"a": pn.widgets.FloatInput}, name="PDD predictor (task pdd)", width=280),
            width=300)
        return pn.Row(controls, pn.Column(
            pn.Row(self.start_button, self.stop_button, self.resume_button, self.progress, self.download),
            self.status, self.failure, pn.Row(self.loss.figure, self.preview.figure, self.spectrum.figure),
            self.runs))
