"""Paper 003's complexity claim on its two-mode mixture: Euler steps needed to recover both the mode weight p and
the within-mode variance σ² as the dimension d grows, for uniform VP/VE and their time dilations.

    python benchmarks/noise_schedules.py [--count 2000] [--seeds 3]

For each d it finds the smallest step count on a doubling-then-bisecting search (up to 4096) whose samples have
|p̂ − p| ≤ 0.04 and |σ̂²/σ² − 1| ≤ 0.15 (``engine.mixture.recovered``) for every seed, and prints the table and the
log–log slope of steps against d. Expected shape: ≈ ½ for the uniform grids (O(√d)), ≈ 0 for the dilated ones.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

from engine.mixture import MIXTURE_SCHEDULES, TwoModeMixture, steps_to_recover

DIMENSIONS = (100, 300, 1000, 3000, 10_000, 30_000, 100_000)
MAX_STEPS = 4096


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="samples per run")
    parser.add_argument("--seeds", type=int, default=3, help="runs that must all recover both features")
    args = parser.parse_args()
    start = time.perf_counter()
    table = {kind: [steps_to_recover(TwoModeMixture(d, 0.8, 0.5), kind, count=args.count, seeds=args.seeds,
                                     max_steps=MAX_STEPS) for d in DIMENSIONS] for kind in MIXTURE_SCHEDULES}
    print(f"\nEuler steps to recover p (±0.04) and σ² (±15%), p = 0.8, σ² = 0.5, k = 3, {args.count} samples × "
          f"{args.seeds} seeds\n")
    print("| schedule | " + " | ".join(f"d = {d:g}" for d in DIMENSIONS) + " | slope of log steps vs log d |")
    print("|---|" + "---|" * (len(DIMENSIONS) + 1))
    for kind, steps in table.items():
        known = [(d, s) for d, s in zip(DIMENSIONS, steps) if s is not None]
        slope = np.polyfit(np.log([d for d, _ in known]), np.log([s for _, s in known]), 1)[0] if len(known) > 1 \
            else math.nan
        cells = " | ".join(str(s) if s is not None else f"> {MAX_STEPS}" for s in steps)
        print(f"| {kind} | {cells} | {slope:.2f} |")
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
