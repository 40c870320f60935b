"""Training throughput on this machine: samples per second of each task's U-Net at 64² (the shipped Kolmogorov test
set), the step broken into its parts by the PyTorch profiler, and the variants of the step (channels-last,
``torch.compile``, the fused optimizer) against the plain one, with their loss curves compared step by step from
the same seed. Prints Markdown tables.

    python benchmarks/training.py [--tasks forecast pointwise generate] [--sizes tiny small] [--steps 8] [--repeats 3]

Every variant is timed over ``--steps`` optimizer steps after two warm-up steps (compilation happens there),
``--repeats`` times, the variants alternating so that the machine's load falls on all of them alike; the tables
give medians.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from report import main_publishing
from torch.profiler import ProfilerActivity, profile

from engine.config import ForecastConfig, ModelConfig, TrainingConfig
from engine.devices import Accelerated
from engine.tasks import make_task
from engine.training import Trainer

DATA = Path(__file__).resolve().parents[1] / "assets" / "kolmogorov-64-test.nc"
PARTS = ("draw", "loss", "backward", "optimizer", "ema")
BATCH = 32
VARIANTS = ("eager", "channels-last", "fused AdamW", "compile")


@dataclass
class Run:
    """A trainer and the network its loss calls, for one variant of the step."""

    trainer: Trainer
    model: torch.nn.Module


def make_run(kind: str, size: str, variant: str, folder: Path, seed: int = 0) -> Run:
    """The training set-up of ``kind`` with a ``size`` U-Net as ``variant`` changes it (the plain one: ``eager``)."""
    task = make_task(kind, path=DATA, forecast=ForecastConfig())
    training = TrainingConfig(steps=100_000, batch_size=BATCH, seed=seed, compile=variant == "compile",
                              grad_clip=1.0)
    trainer = Trainer(task, ModelConfig(size=size), training, folder / f"{kind}-{size}-{variant}")
    if variant == "fused AdamW":
        trainer.optimizer = torch.optim.AdamW(trainer.net.parameters(), lr=training.lr,
                                              weight_decay=training.weight_decay, fused=True)
    model = trainer.prepared_model()
    if variant == "channels-last":
        model = Accelerated(trainer.net, trainer.device, training.precision, channels_last=True)
    return Run(trainer, model)


def timed(run: Run, steps: int) -> float:
    """Seconds per optimizer step over ``steps`` steps (the loss read back once, at the end)."""
    start = time.perf_counter()
    losses = [run.trainer.train_step(run.model) for _ in range(steps)]
    float(torch.stack(losses).sum())
    return (time.perf_counter() - start) / steps


def throughput(kinds, sizes, steps: int, repeats: int, folder: Path) -> dict:
    """Median seconds per step of every (task, size, variant), the variants alternating within each repeat."""
    seconds = {}
    for kind in kinds:
        for size in sizes:
            variants = VARIANTS if size == sizes[0] else ("eager",)
            runs = {variant: make_run(kind, size, variant, folder) for variant in variants}
            for run in runs.values():
                timed(run, 2)  # warm-up: compilation, allocator, first-touch
            times = {variant: [] for variant in runs}
            for _ in range(repeats):
                for variant, run in runs.items():
                    times[variant].append(timed(run, steps))
            for variant, values in times.items():
                seconds[kind, size, variant] = statistics.median(values)
    return seconds


def breakdown(kind: str, size: str, steps: int, folder: Path) -> dict[str, float]:
    """Milliseconds per step in each labelled part of ``Trainer.train_step`` (the profiler's CPU time)."""
    run = make_run(kind, size, "eager", folder)
    timed(run, 2)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        timed(run, steps)
    totals = {event.key: event.cpu_time_total for event in prof.key_averages() if event.key in PARTS}
    return {part: totals.get(part, 0.0) / steps / 1e3 for part in PARTS}


def loss_agreement(kind: str, size: str, variant: str, steps: int, folder: Path) -> float:
    """The largest relative difference between the plain step's and ``variant``'s losses over ``steps`` steps from
    the same seed (the same batches: the data and noise come from the trainer's own generator)."""
    curves = []
    for name in ("eager", variant):
        run = make_run(kind, size, name, folder / "agreement")
        curves.append(torch.stack([run.trainer.train_step(run.model) for _ in range(steps)]))
    return float(((curves[1] - curves[0]).abs() / curves[0].abs()).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", nargs="+", default=["forecast", "pointwise", "generate"])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"])
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--agreement-steps", type=int, default=30, help="steps of the loss-curve comparison")
    args = parser.parse_args()
    for flag in ("steps", "repeats", "agreement_steps"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    folder = Path(tempfile.mkdtemp(prefix="es-train-bench-"))
    print(f"# training throughput: 64² Kolmogorov, batch {BATCH}, {torch.get_num_threads()} threads, "
          f"{args.steps} steps × {args.repeats} alternating repeats, medians\n")
    seconds = throughput(args.tasks, args.sizes, args.steps, args.repeats, folder)
    print("| task | size | step, ms | samples/s |\n|---|---|---|---|")
    for (kind, size, variant), value in seconds.items():
        if variant == "eager":
            print(f"| {kind} | {size} | {value * 1e3:.1f} | {BATCH / value:.0f} |")
    base = args.sizes[0]
    print(f"\n{base} U-Net, the variants of the step against the plain (eager) one; loss agreement: the largest "
          f"relative loss difference over {args.agreement_steps} steps from the same seed\n")
    print("| task | variant | samples/s | × eager | loss agreement |\n|---|---|---|---|---|")
    for kind in args.tasks:
        eager = seconds[kind, base, "eager"]
        for variant in VARIANTS:
            value = seconds[kind, base, variant]
            agreement = 0.0 if variant == "eager" else loss_agreement(kind, base, variant, args.agreement_steps,
                                                                      folder)
            print(f"| {kind} | {variant} | {BATCH / value:.0f} | {eager / value:.2f} | {agreement:.1e} |")
    print(f"\nWhere a {base} step's time goes (eager; the profiler's CPU time per labelled part)\n")
    print("| task | " + " | ".join(PARTS) + " | total, ms |\n|---|" + "---|" * (len(PARTS) + 1))
    for kind in args.tasks:
        parts = breakdown(kind, base, args.steps, folder)
        total = sum(parts.values())
        print(f"| {kind} | " + " | ".join(f"{parts[p]:.1f} ({100 * parts[p] / total:.0f}%)" for p in PARTS)
              + f" | {total:.1f} |")


if __name__ == "__main__":
    main_publishing("training", main)
