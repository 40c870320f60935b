"""The spread over training seeds: each emulator trained from several seeds on the same data, scored on the same
held-out trajectories, reported as mean ± standard deviation and range over the seeds (APEBench's practice).

    python benchmarks/seeds.py [--system kolmogorov|qg] [--seeds 3] [--train-steps 600] [--models pointwise …]

The data are the emulators benchmark's (`benchmarks/emulators.py`: Kolmogorov 8 × 200 snapshots, seed 0, and 4
held-out trajectories, seed 1; or the QG jets, both layers). For each seed s the run
`runs/seeds-<system>/<model>-<steps>-s<s>` (in the data folder; a finished one is reused) trains a tiny U-Net
`--train-steps` steps at batch 16 with `train --seed s` (initial weights, batches and noise all follow it); runs
alternate between the models (the pointwise U-Net, the SI forecaster, paper 001's FNO baseline and the papers' DDPM
baseline; tiny sizes). Each is rolled out 10 steps from 4 test trajectories × 4 members (SI: the
probability-flow ODE, 4 steps; DDPM: 50 strided ancestral steps; the same sampler seed for all) and scored: VRMSE at
leads 1 and 10 and the high-band spectral error at lead 1. The spread is the sample standard deviation over the seeds.
"""
from __future__ import annotations

import argparse
import math
import statistics

from emulators import datasets, run
from report import main_publishing

from engine.config import ForecastConfig, ForecastSamplerConfig, ModelConfig, RolloutConfig, TrainingConfig
from engine.data.sequences import load_trajectories
from engine.data.store import DataStore
from engine.forecast import load_forecaster
from engine.tasks.forecast import ForecastTask
from engine.training import Trainer

MODELS = {"pointwise": ("pointwise", ForecastSamplerConfig()),
          "forecast": ("SI forecaster, PF-ODE (4 steps)", ForecastSamplerConfig(method="pf_ode", steps=4)),
          "fno": ("FNO (paper 001's baseline)", ForecastSamplerConfig()),
          "ddpm": ("DDPM (50 ancestral steps)", ForecastSamplerConfig(steps=50))}
SCORES = ("VRMSE@1", "VRMSE@10", "high-band sRMSE@1")


def scores_of(checkpoint, sampler, truth, test) -> dict[str, float]:
    """The three scores of one trained emulator on the held-out trajectories."""
    config = RolloutConfig(steps=10, members=4, initial_conditions=4)
    _, scores = run(load_forecaster(checkpoint), sampler, truth, config, test)
    vrmse = dict(zip(scores["lead_steps"], scores["vrmse"]))
    high = dict(zip(scores["lead_steps"], scores["band_errors"]["high"]))
    return dict(zip(SCORES, (vrmse.get(1, math.nan), vrmse.get(10, math.nan), high.get(1, math.nan))))


def spread(values: list[float]) -> str:
    """``mean ± std (min–max)`` over seeds, to 4 significant digits (the QG jet's VRMSE@1 is ~0.004)."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4g} ± {std:.2g} ({min(values):.4g}–{max(values):.4g})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=("kolmogorov", "qg"), default="kolmogorov")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=600)
    parser.add_argument("--models", nargs="+", choices=tuple(MODELS), default=tuple(MODELS))
    args = parser.parse_args()
    if not 2 <= args.seeds <= 20 or not 1 <= args.train_steps <= 1_000_000:
        parser.error(f"--seeds must be 2…20 and --train-steps 1…10⁶, not {args.seeds} and {args.train_steps}")
    store = DataStore()
    train_path, test_path = datasets(args.system, store)
    trajectories, test = load_trajectories(train_path), load_trajectories(test_path)
    truth = test.denormalize(test.fields)
    results: dict[str, list[dict]] = {model: [] for model in args.models}
    for seed in range(args.seeds):
        for model in args.models:  # alternating: each seed trains every model in turn
            training = TrainingConfig(steps=args.train_steps, batch_size=16, log_every=100, seed=seed, device="cpu")
            task = ForecastTask(trajectories, ForecastConfig(task=model))
            checkpoint = Trainer(task, ModelConfig(size="tiny"), training,
                                 store.path(f"runs/seeds-{args.system}/{model}-{args.train_steps}-s{seed}")).run()
            results[model].append(scores_of(checkpoint, MODELS[model][1], truth, test))
    print(f"\n{args.system} ({', '.join(test.variables)}), tiny U-Nets trained {args.train_steps} steps from each of "
          f"{args.seeds} seeds; 4 test trajectories × 4 members; mean ± std (min–max) over the seeds\n")
    print("| emulator | " + " | ".join(SCORES) + " |\n|---|---|---|---|")
    for model, runs in results.items():
        print(f"| {MODELS[model][0]} | " + " | ".join(spread([r[key] for r in runs]) for key in SCORES) + " |")
    print("\n| emulator | seed | " + " | ".join(SCORES) + " |\n|---|---|---|---|---|")
    for model, runs in results.items():
        for seed, row in enumerate(runs):
            print(f"| {MODELS[model][0]} | {seed} | " + " | ".join(f"{row[key]:.4g}" for key in SCORES) + " |")


if __name__ == "__main__":
    main_publishing("seeds", main)
