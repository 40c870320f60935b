"""Training tasks: what a network learns from a dataset, as ``network(size)``, ``draw(batch, generator)``
(everything random in a batch, batch-first, so data-parallel ranks can split it) and ``loss(net, drawn)``, plus the
metadata a checkpoint records (``describe()``). The loop that minimizes any of them is ``engine.training.Trainer``.

generate: a drift from noise to the fields; refiner: the same with white noise and the vp schedule (a model
of the stationary distribution that refines rollouts); forecast, noise_baseline, diffusion, ddpm, pointwise, fno:
the emulators of paper 001 and its baselines; sns: paper 004's pair denoiser (a refiner or an emulator); pdd: the
λ-conditioned predictor of paper 002 (2-D fields or 1-D Lorenz-96).
The layers: docs/architecture.md.
"""
from __future__ import annotations

from pathlib import Path

from engine.config import ForecastConfig, NoiseConfig, PDDConfig, ScheduleConfig, options
from engine.data.fields import StateFieldData, generation_fields
from engine.data.sequences import load_sequences, load_trajectories
from engine.errors import EngineError
from engine.tasks.forecast import ForecastTask
from engine.tasks.generative import GenerativeTask, StateGenerativeTask
from engine.tasks.pdd import PDDTask

TASKS = ("generate", "refiner", "forecast", "noise_baseline", "diffusion", "ddpm", "pointwise", "fno", "sns", "pdd")


def make_task(kind: str, *, path: str | Path, variables: str | list[str] | None = None,
              noise: NoiseConfig | None = None, schedule: ScheduleConfig | None = None,
              forecast: ForecastConfig | None = None, spectral_weight: float = 0.0, pdd: PDDConfig | None = None):
    """The training task ``kind`` over the ``variables`` of the dataset file at ``path`` (see the module doc for the
    kinds): every task learns whole states (every field variable by default; a 1-D Lorenz-96 state is one
    variable)."""
    if kind not in TASKS:
        raise EngineError(f"task must be one of {', '.join(TASKS)}, not {kind!r}")
    if kind in ("generate", "refiner"):
        noise, schedule = noise or NoiseConfig(), schedule or ScheduleConfig()
        if kind == "refiner":
            noise, schedule = NoiseConfig(kind="white"), ScheduleConfig(kind="vp")
        fields = generation_fields(path, variables)
        task = StateGenerativeTask if isinstance(fields, StateFieldData) else GenerativeTask
        return task(fields, noise, schedule, spectral_weight, Path(path).name)
    if kind == "pdd":
        return PDDTask(load_sequences(path, variables), pdd or PDDConfig())
    forecast = ForecastConfig(**{**options(forecast or ForecastConfig()), "task": kind})
    return ForecastTask(load_trajectories(path, variables), forecast)
