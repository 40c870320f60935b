"""Paper 003's complexity claim on its two exact models: Euler steps needed to recover both features as the
dimension d grows, for uniform VP/VE and their time dilations.

    python benchmarks/noise_schedules.py [--model mixture|curie-weiss] [--count N] [--seeds S] [--dimensions ...]

Mixture (p = 0.8, σ² = 0.5): |p̂ − p| ≤ 0.04 and |σ̂²/σ² − 1| ≤ 0.15 (``engine.mixture.recovered``), O(samples) per
step. Curie–Weiss (J = 2, p = 0.8): |p̂ − p| ≤ max(0.05, 3 standard errors of p̂), ||M|/d − m| ≤ 0.02 and
|⟨x²⟩ − 1| ≤ 0.05 (``engine.curie_weiss.recovered_features``), O(samples · d) per step. For each d: the smallest
step count on a doubling-then-bisecting search (up to 4096) that recovers both for every seed; then the log–log
slope of steps against d. Expected shape: ≈ ½ for the uniform grids (O(√d)), ≈ 0 for the dilated ones.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
from report import main_publishing

from engine.curie_weiss import CurieWeiss, phase_tolerance, steps_to_recover_spins
from engine.mixture import MIXTURE_SCHEDULES, TwoModeMixture, steps_to_recover

DIMENSIONS = {"mixture": (100, 300, 1000, 3000, 10_000, 30_000, 100_000),
              "curie-weiss": (100, 300, 1000, 3000, 10_000, 30_000)}
DEFAULT_COUNT = {"mixture": 2000, "curie-weiss": 200}
MAX_STEPS = 4096


def steps_needed(model: str, kind: str, d: int, count: int, seeds: int) -> int | None:
    if model == "mixture":
        return steps_to_recover(TwoModeMixture(d, 0.8, 0.5), kind, count=count, seeds=seeds, max_steps=MAX_STEPS)
    return steps_to_recover_spins(CurieWeiss(d, 0.8, 2.0), kind, count=count, seeds=seeds, max_steps=MAX_STEPS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=tuple(DIMENSIONS), default="mixture")
    parser.add_argument("--count", type=int, default=None, help="samples per run (mixture 2000, Curie–Weiss 200)")
    parser.add_argument("--seeds", type=int, default=None, help="runs that must all recover both (mixture 3, "
                                                                  "Curie–Weiss 1)")
    parser.add_argument("--dimensions", type=int, nargs="+", default=None)
    args = parser.parse_args()
    count = args.count or DEFAULT_COUNT[args.model]
    seeds = args.seeds or (3 if args.model == "mixture" else 1)
    dimensions = tuple(args.dimensions or DIMENSIONS[args.model])
    if count < 1 or seeds < 1 or min(dimensions) < 10:
        parser.error("--count and --seeds must be ≥ 1 and every dimension ≥ 10")
    start = time.perf_counter()
    table = {}
    for kind in MIXTURE_SCHEDULES:
        table[kind] = [steps_needed(args.model, kind, d, count, seeds) for d in dimensions]
        print(f"{kind}: {table[kind]} ({time.perf_counter() - start:.0f} s)", flush=True)
    features = "p (±0.04) and σ² (±15%), p = 0.8, σ² = 0.5" if args.model == "mixture" else \
        f"the phase (±{phase_tolerance(0.8, count):.3g}) and the spins (|M|/d ± 0.02, ⟨x²⟩ ± 5%), J = 2, p = 0.8"
    print(f"\n{args.model}: Euler steps to recover {features}, k = 3, {count} samples × {seeds} seeds\n")
    print("| schedule | " + " | ".join(f"d = {d:g}" for d in dimensions) + " | slope of log steps vs log d |")
    print("|---|" + "---|" * (len(dimensions) + 1))
    for kind, steps in table.items():
        known = [(d, s) for d, s in zip(dimensions, steps) if s is not None]
        slope = np.polyfit(np.log([d for d, _ in known]), np.log([s for _, s in known]), 1)[0] if len(known) > 1 \
            else math.nan
        cells = " | ".join(str(s) if s is not None else f"> {MAX_STEPS}" for s in steps)
        print(f"| {kind} | {cells} | {slope:.2f} |")
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main_publishing("noise_schedules", main)
