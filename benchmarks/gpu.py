"""GPU throughput: training (samples/s) for the tiny/small/base U-Nets, sampling (fields/s), and the Kolmogorov
solver (field-steps/s) at 256² and 512² with the fraction of the device's memory bandwidth one step uses.

Prints markdown tables (medians of ``--repeats`` timed runs after a warm-up). Run by ``benchmarks/gpu.sh`` on a
lent GPU; ``--device cpu --quick`` checks the script here.

    python benchmarks/gpu.py [--device cuda] [--repeats 5] [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from report import main_publishing

from engine.config import GRFConfig, ModelConfig, NoiseConfig, ScheduleConfig, TrainingConfig
from engine.data.fields import FieldData
from engine.data.grf import generate_grf
from engine.data.kolmogorov import SCHEMES, KolmogorovFlow, random_vorticity, time_stepper
from engine.diagnostics import spectra
from engine.tasks.generative import GenerativeTask
from engine.training import Trainer


def timed(run, device: str, repeats: int) -> float:
    """Median seconds of ``run()`` over ``repeats`` runs after one warm-up, synchronized on CUDA."""
    def once() -> float:
        start = time.perf_counter()
        run()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    once()
    return statistics.median(once() for _ in range(repeats))


def grf_fields(n: int, count: int) -> FieldData:
    data = generate_grf(GRFConfig(size=n, count=count, seed=0))
    fields = torch.from_numpy(data["field"].values).float()
    return FieldData(fields, spectra(fields, 2).mean(0).double(), "field", {})


def training_rows(device: str, n: int, sizes: list[str], batch: int, steps: int, repeats: int,
                  compile: bool) -> list[str]:
    rows = []
    data = grf_fields(n, 256)
    for size in sizes:
        task = GenerativeTask(data, NoiseConfig(), ScheduleConfig())
        trainer = Trainer(task, ModelConfig(size=size), TrainingConfig(batch_size=batch, device=device,
                                                                        compile=compile), "/tmp/gpu-benchmark")
        model = trainer.prepared_model()

        def run():
            for _ in range(steps):
                trainer.train_step(model)

        seconds = timed(run, device, repeats)
        rows.append(f"| train {size} ({'compiled' if compile else 'eager'}) | {n}² batch {batch} | "
                    f"{batch * steps / seconds:,.0f} samples/s |")
    return rows


def sampling_rows(device: str, n: int, sizes: list[str], batch: int, steps: int, repeats: int) -> list[str]:
    rows = []
    for size in sizes:
        task = GenerativeTask(grf_fields(n, 16), NoiseConfig(), ScheduleConfig())
        trainer = Trainer(task, ModelConfig(size=size), TrainingConfig(device=device), "/tmp/gpu-benchmark")
        model, x = trainer.prepared_model().eval(), torch.randn(batch, 1, n, n, device=trainer.device)
        t = torch.full((batch,), 0.5, device=trainer.device)

        @torch.no_grad()
        def run():
            state = x
            for _ in range(steps):
                state = state + model(state, t) / steps  # an Euler step of the drift

        seconds = timed(run, device, repeats)
        rows.append(f"| sample {size}, {steps} Euler steps | {n}² batch {batch} | {batch / seconds:,.0f} fields/s |")
    return rows


def solver_rows(device: str, sizes: list[int], batch: int, steps: int, repeats: int) -> list[str]:
    rows = []
    peak = bandwidth_bytes_per_second() if device == "cuda" else None  # measured once: a 1 GiB copy, 5 times
    for n in sizes:
        eq = KolmogorovFlow(n, 1e-3, 0.1, 4, device)
        state = torch.fft.rfft2(random_vorticity(n, batch, torch.Generator().manual_seed(0)).to(device))
        for scheme in SCHEMES:
            step = time_stepper(eq, scheme, 1e-3)

            def run():
                current = state
                for _ in range(steps):
                    current = step(current)

            seconds = timed(run, device, repeats)
            rate = batch * steps / seconds
            row = f"| Kolmogorov solver {scheme}, float64 | {n}² batch {batch} | {rate:,.0f} field-steps/s"
            if peak:
                # a lower bound on the bytes one field-step moves: its evaluations × ~12 complex128 half-grid passes
                moved = SCHEMES[scheme].evaluations * 12 * n * (n // 2 + 1) * 16
                row += f" ({rate * moved / peak:.0%} of {peak / 1e12:.1f} TB/s)"
            rows.append(row + " |")
    return rows


def bandwidth_bytes_per_second() -> float | None:
    """The device's memory bandwidth, measured: a large device-to-device copy (read + write)."""
    size = 1 << 30
    a = torch.empty(size, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    seconds = timed(lambda: b.copy_(a), "cuda", 5)
    return 2 * size / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (checks the script on a CPU)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd training")
    args = parser.parse_args()
    quick = args.quick
    sizes = ["tiny"] if quick else ["tiny", "small", "base"]
    n, batch = (32, 8) if quick else (128, 64)
    print(f"device: {torch.cuda.get_device_name() if args.device == 'cuda' else 'cpu'}, torch {torch.__version__}\n")
    print("| workload | shape | throughput |\n|---|---|---|")
    rows = training_rows(args.device, n, sizes, batch, 2 if quick else 10, args.repeats, False)
    if args.compile:
        rows += training_rows(args.device, n, sizes, batch, 10, args.repeats, True)
    rows += sampling_rows(args.device, n, sizes, batch, 2 if quick else 16, args.repeats)
    rows += solver_rows(args.device, [32] if quick else [256, 512], 2 if quick else 16, 2 if quick else 20,
                        args.repeats)
    print("\n".join(rows))


if __name__ == "__main__":
    main_publishing("gpu", main)
