"""Kolmogorov-flow solver speed: engine (torch) vs jax-cfd's spectral solver, same grid, dt and precision.

Both integrate vorticity with 2/3 dealiasing, forcing sin(4y) in u, drag 0.1, ν = 1e-3, by the IMEX
Crank–Nicolson RK4 stepper, in float64, batched (jax-cfd by ``jax.vmap``). Prints a markdown table of
field-steps per second (batch × steps / s, median of repeats) and the engine/jax-cfd ratio.

    pip install -e ".[bench]"; python benchmarks/kolmogorov_solver.py [--sizes 64 128] [--batches 1 16]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from report import main_publishing

from engine.data.kolmogorov import KolmogorovFlow, random_vorticity, time_stepper
from engine.process import keep_freed_memory

VISCOSITY, DT = 1e-3, 5e-3


def engine_runner(n: int, batch: int, steps: int, device: str):
    """A callable that advances a batch ``steps`` steps with the engine's solver (warmed up)."""
    keep_freed_memory()  # as engine.data.kolmogorov.simulate_kolmogorov does
    eq = KolmogorovFlow(n, VISCOSITY, 0.1, 4, device)
    step = time_stepper(eq, "cn_rk4", DT)  # jax-cfd's scheme, the one compared
    omega_hat = torch.fft.rfft2(random_vorticity(n, batch, torch.Generator(device).manual_seed(0), device=device))

    def run():
        state = omega_hat
        for _ in range(steps):
            state = step(state)
        if device == "cuda":
            torch.cuda.synchronize()

    run()
    return run


def jax_cfd_runner(n: int, batch: int, steps: int):
    """The same with jax-cfd's spectral solver, vmapped over the batch and jit-compiled (compiled here)."""
    import jax
    import jax.numpy as jnp
    import jax_cfd.base as cfd
    import jax_cfd.spectral as spectral

    jax.config.update("jax_enable_x64", True)
    grid = cfd.grids.Grid((n, n), domain=((0, 2 * jnp.pi), (0, 2 * jnp.pi)))
    equation = spectral.equations.ForcedNavierStokes2D(VISCOSITY, grid, smooth=True)
    step = spectral.time_stepping.crank_nicolson_rk4(equation, DT)
    advance = jax.jit(jax.vmap(cfd.funcutils.repeated(step, steps)))
    omega = random_vorticity(n, batch, torch.Generator().manual_seed(0)).numpy()
    omega_hat = jnp.fft.rfftn(jnp.asarray(omega), axes=(1, 2))
    advance(omega_hat).block_until_ready()
    return lambda: advance(omega_hat).block_until_ready()


def alternating_rates(runners: list, work: int, repeats: int) -> list[float]:
    """Field-steps per second of each runner, timed in alternation (a noisy machine slows both alike)."""
    times = [[] for _ in runners]
    for _ in range(repeats):
        for run, bucket in zip(runners, times):
            start = time.perf_counter()
            run()
            bucket.append(time.perf_counter() - start)
    return [work / statistics.median(bucket) for bucket in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--steps", type=int, default=100, help="steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=9, help="timed runs of each solver, alternating")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    print(f"torch {torch.__version__} on {args.device}, {torch.get_num_threads()} threads; dt = {DT}, float64\n")
    print("| grid | batch | engine field-steps/s | jax-cfd field-steps/s | ratio |")
    print("|---|---|---|---|---|")
    for n in args.sizes:
        for batch in args.batches:
            runners = [engine_runner(n, batch, args.steps, args.device), jax_cfd_runner(n, batch, args.steps)]
            ours, theirs = alternating_rates(runners, batch * args.steps, args.repeats)
            print(f"| {n}² | {batch} | {ours:.0f} | {theirs:.0f} | {ours / theirs:.2f} |", flush=True)


if __name__ == "__main__":
    main_publishing("kolmogorov_solver", main)
