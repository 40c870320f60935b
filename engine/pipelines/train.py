"""``train``: fit a task's network on a dataset into ``runs/<name>/checkpoint.pt``, resumable, with live events.

The tasks (what is learned) are ``engine.tasks``; the loop is ``engine.training.Trainer``. Started by ``torchrun``
it trains data-parallel over the launched processes (``engine.distributed``); ``launch_local_ranks`` starts the
helper ranks of a job that asked for several local processes. With ``previews`` the
callback also gets, at every checkpoint, what the model does now: a field and its spectrum beside the data's.
See docs/architecture.md.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch

from engine.config import (
    ForecastConfig,
    ForecastSamplerConfig,
    ModelConfig,
    NoiseConfig,
    PDDConfig,
    SamplerConfig,
    ScheduleConfig,
    TrainingConfig,
    options,
)
from engine.data.store import DataStore
from engine.devices import check_memory, resolve_device
from engine.diagnostics import spectra
from engine.distributed import joined
from engine.errors import EngineError
from engine.files import run_lock
from engine.forecast import load_forecaster
from engine.generation import checkpoint_setup, generate_samples
from engine.groups import member_folder, tagged
from engine.models.unet import activation_bytes
from engine.pdd import load_pdd
from engine.pipelines.request import MODEL_FLAGS, NOISE_FLAGS, SCHEDULE_FLAGS, Request, configs, option
from engine.tasks import TASKS, make_task
from engine.training import Trainer

PDD_FLAGS = {"window": "window", "frames": "frames", "std_ratio": "std-ratio", "lam_sampling": "lam-sampling"}
PREVIEW_SAMPLES, PREVIEW_STEPS = 4, 8  # a generator's preview: 4 samples, 8 Euler steps
MAX_SEEDS = 20  # members of one group
SNS_PREVIEW_STEPS = 50  # an SNS or DDPM emulator's preview forecast: 50 strided DDPM steps from pure noise


@dataclass
class TrainResult:
    """Where the checkpoint is, the step reached, the loss history ``[[step, loss], …]`` and this process's rank
    (only rank 0 writes)."""

    checkpoint: Path
    step: int
    history: list
    rank: int = 0
    members: list[Path] = field(default_factory=list)  # a group's checkpoints, one per seed (``--seeds``)


def mean_spectrum(fields: torch.Tensor, ndim: int) -> np.ndarray:
    """The spectrum averaged over every leading index: (..., *grid) → (N/2 + 1,)."""
    return spectra(fields, ndim).reshape(-1, fields.shape[-1] // 2 + 1).mean(0).numpy()


def model_preview(task, checkpoint: Path) -> dict:
    """What the model does now: samples of a generator (8 Euler steps), one forecast of an emulator (4 sampler
    steps; SNS 50), or one noise-free λ = 0 step of a PDD predictor, from the first trajectory's first state;
    physical units; a state of several fields whole (C, n, n), with ``variables`` and a spectrum per field."""
    if task.kind == "generate":
        noise, schedule = (NoiseConfig(**task.configs["noise"]), ScheduleConfig(**task.configs["schedule"]))
        setup = checkpoint_setup(str(checkpoint), task.data, noise, schedule, torch.device("cpu"))
        fields = generate_samples(setup, SamplerConfig(steps=PREVIEW_STEPS, seed=0), PREVIEW_SAMPLES).samples
        data = task.data.fields[:64]
    else:
        state = task.data.denormalize(task.data.fields[:1, 0])
        if task.kind == "pdd":
            fields = load_pdd(checkpoint).stepper(0.0, noise=False)(state)
        else:
            generator = torch.Generator().manual_seed(0)
            sampler = ForecastSamplerConfig(steps=SNS_PREVIEW_STEPS if task.kind in ("sns", "ddpm") else 4)
            fields = load_forecaster(checkpoint).step(state, sampler, generator)
        data = task.data.denormalize(task.data.fields[:, :16]).flatten(0, 1)
    if getattr(task.data, "channels", 1) > 1:  # a state of several fields: every field, each with its spectra
        channels = range(task.data.channels)
        return {"field": fields[0], "variables": list(task.data.variables),
                "spectrum": np.stack([mean_spectrum(fields[:, c], task.spatial_dims) for c in channels]),
                "data_spectrum": np.stack([mean_spectrum(data[:, c], task.spatial_dims) for c in channels])}
    return {"field": fields[0], "spectrum": mean_spectrum(fields, task.spatial_dims),
            "data_spectrum": mean_spectrum(data, task.spatial_dims), "variable": task.data.variable}


@dataclass(kw_only=True)
class TrainRequest(Request):
    """Train ``task`` on ``data`` into the run folder ``out``, resuming it when it holds a checkpoint."""

    command: ClassVar[str] = "train"
    summary: ClassVar[str] = ("train a generator, an emulator or a refiner on a dataset (data-parallel under "
                              "torchrun: docs/scaling.md)")
    task: str = option("generate: a drift from noise to the fields; refiner: the same with white noise and the vp "
                       "schedule, to refine rollouts; forecast: the stochastic-interpolant emulator u_n → u_n+1; "
                       "noise_baseline: a conditional generator from Gaussian noise; diffusion: an EDM diffusion "
                       "model of u_n+1 given u_n (many steps); ddpm: the same as a DDPM (ε-prediction); pointwise: a "
                       "residual U-Net; fno: a residual Fourier neural operator; sns: paper 004's pair denoiser; "
                       "pdd: the λ-conditioned predictor of predictor-driven diffusion (default: generate)",
                       default="generate", choices=TASKS)
    data: str = option("dataset name in the data folder (a variable with dims (..., y, x); emulators need (..., "
                       "time, y, x))", required=True)
    out: str = option("run folder in the data folder for checkpoint.pt, e.g. runs/si (resumed if present)",
                      required=True)
    variables: list[str] | None = option("the data variables one state is made of, e.g. pv_upper pv_lower (default: "
                                         "every (..., y, x) variable on the first one's grid, in file order; a "
                                         "1-D Lorenz-96 state is one variable)",
                                         nargs="+")
    noise: NoiseConfig = configs(NoiseConfig, *NOISE_FLAGS)
    schedule: ScheduleConfig = configs(ScheduleConfig, *SCHEDULE_FLAGS)
    model: ModelConfig = configs(ModelConfig, *MODEL_FLAGS)
    training: TrainingConfig = configs(TrainingConfig)
    forecast: ForecastConfig = configs(ForecastConfig, skip=("task",))
    pdd: PDDConfig = configs(PDDConfig, "pdd-", PDD_FLAGS)
    seeds: int = option("train this many seeds of the configuration as one group: run folders OUT/seed-0 … "
                        "OUT/seed-(K−1) with training seeds --seed, --seed + 1, … (rollouts of OUT report the "
                        "spread over the seeds)", default=1, type=int)
    resume: bool = True
    previews: bool = False

    def run(self, *, store: DataStore, callback: Callable[[dict], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> TrainResult:
        if not 1 <= self.seeds <= MAX_SEEDS:
            raise EngineError(f"--seeds must be between 1 and {MAX_SEEDS}, not {self.seeds}")
        top = self.training.param.seed.bounds[1]
        if self.training.seed + self.seeds - 1 > top:
            raise EngineError(f"--seed {self.training.seed} with --seeds {self.seeds} would train seeds past {top}; "
                              f"start at --seed {top - self.seeds + 1} or below")
        if self.seeds == 1:
            return self._train(self.out, self.training, store, callback, should_stop)
        results = []
        for index in range(self.seeds):  # one member after another; a stop ends the group where it is
            training = TrainingConfig(**{**options(self.training), "seed": self.training.seed + index})
            results.append(self._train(member_folder(self.out, index), training, store, tagged(callback, index),
                                       should_stop))
            if should_stop is not None and should_stop():
                break
        return replace(results[-1], members=[result.checkpoint for result in results])

    def _train(self, out: str, training: TrainingConfig, store: DataStore, callback, should_stop) -> TrainResult:
        return train(store=store, task=self.task, data=self.data, out=out, model=self.model, training=training,
                     variables=self.variables, noise=self.noise, schedule=self.schedule, forecast=self.forecast,
                     pdd=self.pdd, resume=self.resume, previews=self.previews, callback=callback,
                     should_stop=should_stop)


def train(*, store: DataStore, task: str, data: str, out: str, model: ModelConfig, training: TrainingConfig,
          variables: list[str] | None = None, noise: NoiseConfig | None = None, schedule: ScheduleConfig | None = None,
          forecast: ForecastConfig | None = None, pdd: PDDConfig | None = None, resume: bool = True,
          previews: bool = False, callback: Callable[[dict], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train ``task`` on dataset ``data`` into the run folder ``out`` (both names in ``store``)."""
    if store.path(out).is_file():
        raise EngineError(f"--out {out} is a file; train writes a run folder (e.g. runs/my-run) and resumes it")
    learned = make_task(task, path=store.path(data), variables=variables, noise=noise, schedule=schedule,
                        forecast=forecast, spectral_weight=training.spectral_weight, pdd=pdd)
    report = callback or (lambda event: None)

    def on_event(event: dict) -> None:
        report(event)
        if previews and event["kind"] == "checkpoint":
            report({"kind": "preview", "step": event["step"], **model_preview(learned, Path(event["path"]))})

    device = resolve_device(training.device)
    with joined(device) as world:
        pixels = learned.data.fields.shape[-1] ** learned.spatial_dims
        windows = getattr(learned, "frames", 2)  # a PDD batch holds whole sequences
        share = -(-training.batch_size // world.size)
        per_process = " per process" if world.size > 1 else ""
        check_memory(required=share * windows * activation_bytes(model.size, pixels),
                     what=f"training a {model.size} U-Net at batch {share}{per_process}",
                     device=world.device(device), fix="lower --batch-size or --model-size")
        held = run_lock(store.path(out), "a training") if world.is_main else contextlib.nullcontext()
        with held:
            trainer = Trainer(learned, model, training, store.path(out), on_event, should_stop, world)
            path = trainer.run(resume=resume)
    return TrainResult(path, trainer.step, trainer.history, world.rank)
