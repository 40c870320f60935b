"""NFE vs spectral error for white / power-law / matched noise, with the exact and a trained drift,
and training throughput. Prints markdown tables.

    python benchmarks/sampling.py [--size 32] [--train-steps 1400] [--count 256]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from report import main_publishing

from engine.config import GRFConfig, ModelConfig, NoiseConfig, SamplerConfig, ScheduleConfig, TrainingConfig
from engine.data.fields import load_fields
from engine.data.grf import generate_grf
from engine.data.io import write_dataset
from engine.generation import generate_samples, make_setup
from engine.noise import NOISE_KINDS
from engine.tasks.generative import GenerativeTask
from engine.training import Trainer

STEPS = (4, 8, 16, 32, 64)


def train(data, noise: str, folder: Path, steps: int, size: str = "tiny") -> tuple[Path, float]:
    """Train (the learning rate decays over ``steps``); returns the checkpoint and the median steps/s."""
    rates = []
    trainer = Trainer(GenerativeTask(data, NoiseConfig(kind=noise), ScheduleConfig()), ModelConfig(size=size),
                      TrainingConfig(steps=steps, batch_size=32, log_every=50),
                      folder,
                      callback=lambda e: rates.append(e["steps_per_second"]) if e["kind"] == "progress" else None)
    path = trainer.run(resume=False)
    return path, statistics.median(rates[1:] or rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--count", type=int, default=256, help="samples per spectral-error estimate")
    parser.add_argument("--train-steps", type=int, default=1400, help="about 90 s of a tiny U-Net on 2 cores")
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    folder = Path(tempfile.mkdtemp(prefix="es-bench-"))
    path = write_dataset(generate_grf(GRFConfig(size=args.size, count=1024, seed=1)), folder / "grf.nc")
    data = load_fields(path)
    print(f"# sampling: {args.size}² GRFs (s = 3), linear schedule, Euler ODE, {args.count} samples, "
          f"mean |log S_gen/S_data|; trained: tiny U-Net, {args.train_steps} steps\n")
    print("| noise | drift | " + " | ".join(f"NFE {s}" for s in STEPS) + " |")
    print("|---|---|" + "---|" * len(STEPS))
    throughput = {}
    for noise in NOISE_KINDS:
        checkpoint, rate = train(data, noise, folder / noise, args.train_steps)
        throughput[noise] = rate
        for model, ckpt in (("exact", None), ("trained tiny U-Net", str(checkpoint))):
            kind = "analytic" if ckpt is None else "unet"
            setup = make_setup(ModelConfig(kind=kind), data, NoiseConfig(kind=noise), ScheduleConfig(), ckpt)
            errors = [generate_samples(setup, SamplerConfig(steps=s, seed=3), args.count).errors["spectral_error"]
                      for s in STEPS]
            print(f"| {noise} | {model} | " + " | ".join(f"{e:.3f}" for e in errors) + " |")
    print(f"\n# training throughput (tiny U-Net, {args.size}², batch 32, {torch.get_num_threads()} threads, "
          f"median over 50-step windows)\n")
    print("| noise | steps/s |\n|---|---|")
    for noise, rate in throughput.items():
        print(f"| {noise} | {rate:.1f} |")


if __name__ == "__main__":
    start = time.monotonic()
    main_publishing("sampling", main)
    print(f"\n(total {time.monotonic() - start:.0f} s)")
