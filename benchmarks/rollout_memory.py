"""Peak memory of one rollout request written to .nc (gathered, then written) and to .zarr (each initial
condition's members written and dropped as they arrive): the shipped pointwise emulator on the built-in Kolmogorov
test set, each run in a fresh process (peak RSS is per process). Prints markdown.

    python benchmarks/rollout_memory.py [--steps 400] [--members 16] [--initial-conditions 4]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

from report import main_publishing

CHECKPOINT = "runs/shipped-pointwise/checkpoint.pt"


def measure(out: str, steps: int, members: int, initial_conditions: int) -> dict:
    """One rollout to ``out`` in this process: peak RSS before and after, and seconds."""
    import torch

    from engine.config import ForecastSamplerConfig, RolloutConfig
    from engine.data.catalog import builtin_test_data, install_defaults
    from engine.data.store import DataStore
    from engine.pipelines.rollout import run_rollout

    torch.set_num_threads(1)
    store = DataStore(tempfile.mkdtemp(prefix="rollout-memory-"))
    install_defaults(store)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    run_rollout(store=store, checkpoint=CHECKPOINT, data=builtin_test_data(store, CHECKPOINT),
                config=RolloutConfig(steps=steps, members=members, initial_conditions=initial_conditions,
                                     device="cpu"),
                sampler=ForecastSamplerConfig(), out=out)
    return {"before": before, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--initial-conditions", type=int, default=4)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for flag, value in (("--steps", args.steps), ("--members", args.members),
                        ("--initial-conditions", args.initial_conditions)):
        if value < 1:
            parser.error(f"{flag} must be at least 1, not {value}")
    if args.initial_conditions > 4:
        parser.error("--initial-conditions: the built-in Kolmogorov test set has 4 trajectories")
    if args.child:
        print(json.dumps(measure(args.child, args.steps, args.members, args.initial_conditions)))
        return
    states = args.members * args.initial_conditions * (args.steps + 1) * 64 * 64 * 4 / 2**20
    print(f"{args.initial_conditions} initial conditions × {args.members} members × {args.steps} steps, 64²: the "
          f"states are {states:.0f} MiB\n\n| output | peak RSS (MiB) | before the rollout (MiB) | seconds |\n"
          "|---|---|---|---|")
    for out in ("rollout.nc", "rollout.zarr"):
        child = subprocess.run([sys.executable, __file__, "--child", out, "--steps", str(args.steps), "--members",
                                str(args.members), "--initial-conditions", str(args.initial_conditions)],
                               capture_output=True, text=True, check=True)
        row = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"| {out} | {row['peak']:.0f} | {row['before']:.0f} | {row['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main_publishing("rollout_memory", main)
