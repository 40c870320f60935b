"""Kolmogorov solvers at equal accuracy: the engine's time steppers, each scored against itself at a 16× finer step.

    python benchmarks/solver_work_precision.py [--repeats 3] [--cases 64 128] [--write-docs]

Every stepper starts from the same spun-up flows (our solver, 20 time units from seed 0), integrates to T at
dt = 0.02 … 0.0025 in float32 and float64, and is scored by the relative L2 error of ω(T) against the same stepper
in float64 at the smallest dt / 16. Wall time: the median of ``--repeats`` runs, alternating between the steppers,
after one warm-up run each. Prints every (stepper, precision, dt) point and, per error target, each stepper's
fastest point that reaches it and the time ratio to the IMEX Crank–Nicolson RK4 (the engine's data generator).
Steppers: ``cn_rk4`` (IMEX low-storage RK4, five nonlinear evaluations a step) and ``etdrk4`` (Cox–Matthews
exponential RK4, four, the viscous part exact). The peers (jax-cfd, exponax) are not run by this script yet;
``benchmarks/kolmogorov_solver.py`` times jax-cfd at one dt.
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
from report import main_publishing

from engine.config import KolmogorovConfig
from engine.data.kolmogorov import KolmogorovFlow, crank_nicolson_rk4, etdrk4, simulate_kolmogorov

CASES = {64: (16, 1.0), 128: (8, 0.5)}  # grid → (batch, T)
STEPS = (0.02, 0.01, 0.005, 0.0025)
TARGETS = (1e-3, 1e-2)
PRECISIONS = {"float32": torch.float32, "float64": torch.float64}


def stepper(name: str, equation: KolmogorovFlow, dt: float):
    if name == "etdrk4":
        return etdrk4(equation.explicit_terms, equation.linear, dt)
    return crank_nicolson_rk4(equation.explicit_terms, equation.implicit_terms, equation.implicit_solve, dt,
                              equation.linear)


def integrate(name: str, omega: torch.Tensor, dt: float, duration: float, dtype: torch.dtype) -> torch.Tensor:
    """ω(T) from ω(0) by ``name`` at step ``dt`` in ``dtype`` (float64 out)."""
    equation = KolmogorovFlow(omega.shape[-1], dtype=dtype)
    step = stepper(name, equation, dt)
    state = torch.fft.rfft2(omega.to(dtype))
    for _ in range(round(duration / dt)):
        state = step(state)
    return torch.fft.irfft2(state, s=omega.shape[-2:]).double()


def spun_up(n: int, batch: int) -> torch.Tensor:
    config = KolmogorovConfig(size=n, trajectories=batch, snapshots=1, spin_up=20.0, save_interval=0.5, seed=0,
                              device="cpu")
    return torch.from_numpy(simulate_kolmogorov(config)["vorticity"].values[:, -1]).double()


def relative_error(omega: torch.Tensor, reference: torch.Tensor) -> float:
    error = float((omega - reference).norm() / reference.norm())
    return error if math.isfinite(error) else math.inf


def measure(n: int, repeats: int) -> list[dict]:
    """Every (stepper, precision, dt) point of grid ``n``: error and median seconds."""
    batch, duration = CASES[n]
    omega = spun_up(n, batch)
    points = [{"stepper": name, "precision": precision, "dt": dt} for dt in STEPS for precision in PRECISIONS
              for name in ("cn_rk4", "etdrk4")]
    references = {name: integrate(name, omega, min(STEPS) / 16, duration, torch.float64)
                  for name in ("cn_rk4", "etdrk4")}
    for point in points:  # the error, and the warm-up run
        result = integrate(point["stepper"], omega, point["dt"], duration, PRECISIONS[point["precision"]])
        point["error"], point["times"] = relative_error(result, references[point["stepper"]]), []
    for _ in range(repeats):  # alternating: every point once per round
        for point in points:
            start = time.perf_counter()
            integrate(point["stepper"], omega, point["dt"], duration, PRECISIONS[point["precision"]])
            point["times"].append(time.perf_counter() - start)
    for point in points:
        point["seconds"] = statistics.median(point["times"])
    return points


def fastest(points: list[dict], name: str, target: float) -> dict | None:
    reached = [p for p in points if p["stepper"] == name and p["error"] <= target]
    return min(reached, key=lambda p: p["seconds"]) if reached else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", type=int, nargs="+", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()
    if not 1 <= args.repeats <= 100:
        parser.error(f"--repeats must be between 1 and 100, not {args.repeats}")
    torch.set_num_threads(min(2, torch.get_num_threads()))
    print(f"\nrelative L2 error of ω(T) against the same stepper in float64 at dt {min(STEPS) / 16:g}; seconds: "
          f"median of {args.repeats} alternating runs, {torch.get_num_threads()} threads\n")
    summary = []
    for n in args.cases:
        batch, duration = CASES[n]
        points = measure(n, args.repeats)
        print(f"| {n}², batch {batch}, T = {duration:g} | precision | dt | error | seconds |\n|---|---|---|---|---|")
        for p in points:
            print(f"| {p['stepper']} | {p['precision']} | {p['dt']:g} | {p['error']:.2e} | {p['seconds']:.3f} |")
        print()
        for target in TARGETS:
            base, best = fastest(points, "cn_rk4", target), fastest(points, "etdrk4", target)
            summary.append((n, batch, duration, target, base, best))
    print("| grid, batch, T | error target | cn_rk4's fastest | etdrk4's fastest | etdrk4 time / cn_rk4 time |")
    print("|---|---|---|---|---|")
    for n, batch, duration, target, base, best in summary:
        def cell(p):
            return f"{p['precision']}, dt {p['dt']:g}: {p['seconds']:.3f} s" if p else "none reaches it"
        ratio = f"{best['seconds'] / base['seconds']:.2f}" if base and best else "—"
        print(f"| {n}², {batch}, T = {duration:g} | {target:g} | {cell(base)} | {cell(best)} | {ratio} |")


if __name__ == "__main__":
    main_publishing("solver_work_precision", main)
