"""CPU jobs side by side: the throughput each keeps beside another, against running alone.

Two workloads, each in its own spawned process as a dashboard job would run: the Kolmogorov solver (64²,
batch 4, field-steps/s) and tiny U-Net training (32² GRFs, batch 16, steps/s). Each is measured alone and in
every pair, with the workers' OpenMP threads sleeping when idle (the jobs' setting, ``engine.devices.
openmp.SLEEPING_THREADS``) and, for comparison, spinning (OpenMP's default) with as many threads as cores. Runs
alternate; medians of ``--repeats``. Prints markdown.

    python benchmarks/contention.py [--seconds 8] [--repeats 3]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time

from report import main_publishing

SPINNING = {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": "30000000000", "KMP_BLOCKTIME": "200"}


def solver_rate(seconds: float, threads: int) -> float:
    """Kolmogorov field-steps per second over ``seconds`` (64², 4 trajectories, dt = 5·10⁻³)."""
    import torch

    from engine.data.kolmogorov import KolmogorovFlow, random_vorticity, time_stepper

    torch.set_num_threads(threads)
    flow = KolmogorovFlow(64)
    step = time_stepper(flow, "cn_rk4", 5e-3)
    omega_hat = torch.fft.rfft2(random_vorticity(64, 4, torch.Generator().manual_seed(0)))
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        omega_hat = step(omega_hat)
        count += omega_hat.shape[0]
    return count / (time.perf_counter() - start)


def training_rate(seconds: float, threads: int) -> float:
    """Tiny U-Net optimizer steps per second over ``seconds``."""
    import torch

    from engine.models.unet import build_unet

    torch.set_num_threads(threads)
    model = build_unet("tiny")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(16, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    t = torch.rand(16)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        loss = (model(x, t) - x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        count += 1
    return count / (time.perf_counter() - start)


WORKLOADS = {"solver (field-steps/s)": solver_rate, "training (steps/s)": training_rate}


def _run(name: str, seconds: float, threads: int, results) -> None:
    results.put((name, WORKLOADS[name](seconds, threads)))


def run_together(names: list[str], seconds: float, threads: int, environment: dict) -> list[tuple[str, float]]:
    """Start one spawned process per workload at once (with ``environment``); their (name, rate) pairs."""
    context = mp.get_context("spawn")
    results = context.Queue()
    saved = dict(os.environ)
    os.environ.update(environment)  # a spawned process copies the environment as it starts
    try:
        processes = [context.Process(target=_run, args=(name, seconds, threads, results)) for name in names]
        for process in processes:
            process.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    rates = [results.get() for _ in processes]
    for process in processes:
        process.join()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from engine.devices import worker_threads
    from engine.process import SLEEPING_THREADS

    solver, training = list(WORKLOADS)
    cases = {"sleeping threads (jobs)": (SLEEPING_THREADS, worker_threads()),
             "spinning threads, one per core": (SPINNING, os.cpu_count() or 2)}
    plans = {"alone": [[solver], [training]], "solver + training": [[solver, training]],
             "training + training": [[training, training]]}
    print(f"{os.cpu_count()} cores, {args.seconds:g} s per run, median of {args.repeats} alternating runs\n")
    print("| threads | workload | alone | beside the other job | kept |\n|---|---|---|---|---|")
    for label, (environment, threads) in cases.items():
        samples: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeats):
            for plan, groups in plans.items():
                for names in groups:
                    for name, rate in run_together(names, args.seconds, threads, environment):
                        samples.setdefault((plan, name), []).append(rate)
        for name, pair in ((solver, "solver + training"), (training, "solver + training"),
                           (training, "training + training")):
            alone = statistics.median(samples[("alone", name)])
            beside = statistics.median(samples[(pair, name)])
            print(f"| {label} | {name}, {pair} | {alone:.1f} | {beside:.1f} | {beside / alone:.0%} |")


if __name__ == "__main__":
    main_publishing("contention", main)
