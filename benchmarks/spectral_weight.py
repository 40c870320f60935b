"""Our spectral-weight loss against the papers' plain L2: a generator trained with each, judged by its samples'
spectral error per band.

    python benchmarks/spectral_weight.py [--data grf|allen-cahn] [--steps 600] [--seeds 2] [--weights 0 0.25]

`train --spectral-weight p` weights each Fourier mode of the residual by (S_n/mean S_n)^(−p) (0: the papers' L2,
the default). With white noise S_n is flat and every p is the L2; with matched noise p > 0 raises the fine modes.
For each p and seed: a tiny U-Net trained `--steps` steps at batch 16 on the built-in set (matched noise, linear
schedule; runs alternate between the weights), then 256 samples by 16 Euler steps, their mean |log S_gen/S_data|
over all shells and per band. Prints the median over seeds and the ratio to p = 0.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from report import main_publishing

from engine.config import ModelConfig, NoiseConfig, SamplerConfig, ScheduleConfig, TrainingConfig
from engine.data.catalog import install_defaults
from engine.data.fields import load_fields
from engine.data.store import DataStore
from engine.generation import checkpoint_setup, generate_samples
from engine.tasks.generative import GenerativeTask
from engine.training import Trainer

DATASETS = {"grf": 1, "allen-cahn": 5}  # their index in install_defaults
KEYS = ("spectral_error", "low_band_error", "mid_band_error", "high_band_error")


def errors_after_training(data_path: Path, weight: float, seed: int, steps: int, folder: Path) -> dict[str, float]:
    noise, schedule = NoiseConfig(kind="matched"), ScheduleConfig(kind="linear")
    data = load_fields(data_path)
    task = GenerativeTask(data, noise, schedule, weight, data_path.name)
    training = TrainingConfig(steps=steps, batch_size=16, log_every=steps, checkpoint_every=steps, seed=seed,
                              spectral_weight=weight, device="cpu")
    checkpoint = Trainer(task, ModelConfig(size="tiny"), training, folder / f"p{weight}-s{seed}").run()
    setup = checkpoint_setup(str(checkpoint), data, noise, schedule, torch.device("cpu"))
    return generate_samples(setup, SamplerConfig(steps=16, seed=seed), 256).errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=tuple(DATASETS), default="grf")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.25])
    args = parser.parse_args()
    if not 1 <= args.steps <= 1_000_000 or not 1 <= args.seeds <= 100:
        parser.error(f"--steps must be 1…10⁶ and --seeds 1…100, not {args.steps} and {args.seeds}")
    if any(not 0 <= weight <= 0.5 for weight in args.weights):
        parser.error(f"--weights must lie in [0, 0.5] (train --spectral-weight's bounds), not {args.weights}")
    store = DataStore()
    data_path = store.path(install_defaults(store)[DATASETS[args.data]])
    results: dict[float, list[dict]] = {weight: [] for weight in args.weights}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.seeds):
            for weight in args.weights:  # alternating: each seed trains every weight in turn
                results[weight].append(errors_after_training(data_path, weight, seed, args.steps, Path(folder)))
    print(f"\n{args.data}, tiny U-Nets, {args.steps} steps at batch 16, matched noise, linear schedule; 256 samples "
          f"by 16 Euler steps; median of {args.seeds} seeds ({time.perf_counter() - start:.0f} s)\n")
    print("| spectral weight p | mean \\|log S/S_d\\| | low band | mid band | high band | ratio to p = 0 (all) |")
    print("|---|---|---|---|---|---|")
    base = statistics.median(r["spectral_error"] for r in results[args.weights[0]])
    for weight, runs in results.items():
        medians = [statistics.median(r[key] for r in runs) for key in KEYS]
        print(f"| {weight:g} | " + " | ".join(f"{m:.3f}" for m in medians) + f" | {medians[0] / base:.2f} |")


if __name__ == "__main__":
    main_publishing("spectral_weight", main)
