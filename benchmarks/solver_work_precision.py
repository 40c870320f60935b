"""Kolmogorov solvers at equal accuracy: the engine's time steppers, each scored against itself at a 16× finer step.

    python benchmarks/solver_work_precision.py [--repeats 3] [--cases 64 128] [--write-docs]

Every stepper starts from the same spun-up flows (our solver, 20 time units from seed 0), integrates to T at
dt = 0.02 … 0.0025 in float32 and float64, and is scored by the relative L2 error of ω(T) against the same stepper
in float64 at the smallest dt / 16. Wall time: the median of ``--repeats`` runs, alternating between the steppers,
after one warm-up run each. Prints every (stepper, precision, dt) point and, per error target, each stepper's
fastest point that reaches it and the time ratio to the IMEX Crank–Nicolson RK4 (the engine's data generator).
Steppers: ``cn_rk4`` (IMEX low-storage RK4, five nonlinear evaluations a step), ``etdrk4`` (Cox–Matthews
exponential RK4, four, the viscous part exact) and ``dopri5`` (explicit Dormand–Prince RK5, six); with the
``[bench]`` extra installed, jax-cfd's spectral CN–RK4 on the same equation, scored against itself alike (compiled
before timing), and the last table compares the engine's fastest point at each error target with the best peer's;
with exponax installed too, its ETDRK2 and ETDRK4.
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import math
import statistics
import time
from typing import Callable

import numpy as np
import torch
from report import main_publishing

from engine.config import KolmogorovConfig
from engine.data.kolmogorov import SCHEMES, KolmogorovFlow, simulate_kolmogorov, time_stepper

CASES = {64: (16, 1.0), 128: (8, 0.5)}  # grid → (batch, T)
ENGINE = tuple(SCHEMES)
VISCOSITY = 1e-3  # KolmogorovFlow's default, given to the peers
Runner = Callable[[], torch.Tensor]
STEPS = (0.02, 0.01, 0.005, 0.0025)
TARGETS = (1e-3, 1e-2)
PRECISIONS = {"float32": torch.float32, "float64": torch.float64}


def engine_runner(name: str, omega: torch.Tensor, dt: float, duration: float, dtype: torch.dtype) -> Runner:
    """A call that integrates ω(0) to ω(T) by the engine's stepper ``name`` at step ``dt`` in ``dtype`` (float64
    out)."""
    equation = KolmogorovFlow(omega.shape[-1], dtype=dtype)
    step, start, steps = time_stepper(equation, name, dt), torch.fft.rfft2(omega.to(dtype)), round(duration / dt)

    def run() -> torch.Tensor:
        state = start
        for _ in range(steps):
            state = step(state)
        return torch.fft.irfft2(state, s=omega.shape[-2:]).double()

    return run


def jax_cfd_runner(omega: torch.Tensor, dt: float, duration: float, dtype: torch.dtype) -> Runner:
    """The same with jax-cfd's spectral CN–RK4 (``ForcedNavierStokes2D``: ν = 10⁻³, drag 0.1, Kolmogorov forcing
    k = 4, 2/3 dealiasing), vmapped over the batch and compiled here. Its grid's first axis is x, ours y, so the
    fields go in transposed; float32 runs with jax's 64-bit mode off (on, its float64 constants promote the
    state)."""
    import jax
    import jax.numpy as jnp
    import jax_cfd.base as cfd
    import jax_cfd.spectral as spectral

    wide, n = dtype == torch.float64, omega.shape[-1]
    with jax.enable_x64(wide):
        grid = cfd.grids.Grid((n, n), domain=((0, 2 * jnp.pi), (0, 2 * jnp.pi)))
        step = spectral.time_stepping.crank_nicolson_rk4(
            spectral.equations.ForcedNavierStokes2D(VISCOSITY, grid, smooth=True), dt)
        advance = jax.jit(jax.vmap(cfd.funcutils.repeated(step, round(duration / dt))))
        start = jnp.fft.rfftn(jnp.asarray(omega.transpose(-1, -2).numpy(), dtype=jnp.float64 if wide else
                                          jnp.float32), axes=(1, 2))
        advance(start).block_until_ready()  # compiled once, outside the timing

    def run() -> torch.Tensor:
        with jax.enable_x64(wide):
            end = jnp.fft.irfftn(advance(start), s=(n, n), axes=(1, 2)).block_until_ready()
        return torch.from_numpy(np.array(end, dtype=np.float64)).transpose(-1, -2)  # a copy: jax arrays are read-only

    return run


def exponax_runner(order: int, omega: torch.Tensor, dt: float, duration: float, dtype: torch.dtype) -> Runner:
    """The same with exponax's ``KolmogorovFlowVorticity`` (ETDRK of ``order``; ν = 10⁻³, drag −0.1 in its sign,
    forcing −4 cos(4 x₁), 2/3 dealiasing), vmapped over the batch and compiled here; its forced axis x₁ is its last,
    ours y the second to last, so the fields go in transposed; float32 with jax's 64-bit mode off."""
    import exponax
    import jax
    import jax.numpy as jnp

    wide, n = dtype == torch.float64, omega.shape[-1]
    with jax.enable_x64(wide):
        step = exponax.stepper.KolmogorovFlowVorticity(2, 2 * math.pi, n, dt, diffusivity=VISCOSITY, drag=-0.1,
                                                       injection_mode=4, order=order)
        advance = jax.jit(jax.vmap(exponax.repeat(step, round(duration / dt))))
        start = jnp.asarray(omega.transpose(-1, -2)[:, None].numpy(), dtype=jnp.float64 if wide else jnp.float32)
        advance(start).block_until_ready()  # compiled once, outside the timing

    def run() -> torch.Tensor:
        with jax.enable_x64(wide):
            end = advance(start).block_until_ready()
        return torch.from_numpy(np.array(end[:, 0], dtype=np.float64)).transpose(-1, -2)

    return run


def solvers() -> dict[str, Callable[..., Runner]]:
    """The engine's steppers, and each peer that is installed (``pip install -e ".[bench]"``)."""
    found = {name: functools.partial(engine_runner, name) for name in ENGINE}
    if importlib.util.find_spec("jax_cfd") is not None:
        found["jax-cfd cn_rk4"] = jax_cfd_runner
    if importlib.util.find_spec("exponax") is not None:
        found.update({f"exponax etdrk{order}": functools.partial(exponax_runner, order) for order in (2, 4)})
    return found


def spun_up(n: int, batch: int) -> torch.Tensor:
    config = KolmogorovConfig(size=n, trajectories=batch, snapshots=1, spin_up=20.0, save_interval=0.5, seed=0,
                              device="cpu")
    return torch.from_numpy(simulate_kolmogorov(config)["vorticity"].values[:, -1]).double()


def relative_error(omega: torch.Tensor, reference: torch.Tensor) -> float:
    error = float((omega - reference).norm() / reference.norm())
    return error if math.isfinite(error) else math.inf


def measure(n: int, repeats: int, found: dict[str, Callable[..., Runner]]) -> list[dict]:
    """Every (solver, precision, dt) point of grid ``n``: error and median seconds."""
    batch, duration = CASES[n]
    omega = spun_up(n, batch)
    points = [{"stepper": name, "precision": precision, "dt": dt} for dt in STEPS for precision in PRECISIONS
              for name in found]
    references = {name: make(omega, min(STEPS) / 16, duration, torch.float64)() for name, make in found.items()}
    for point in points:  # the error, and the warm-up run
        point["run"] = found[point["stepper"]](omega, point["dt"], duration, PRECISIONS[point["precision"]])
        point["error"], point["times"] = relative_error(point["run"](), references[point["stepper"]]), []
    for _ in range(repeats):  # alternating: every point once per round
        for point in points:
            start = time.perf_counter()
            point["run"]()
            point["times"].append(time.perf_counter() - start)
    for point in points:
        point["seconds"] = statistics.median(point.pop("times"))
        del point["run"]
    return points


def fastest(points: list[dict], names, target: float) -> dict | None:
    """The quickest point of the solvers ``names`` whose error is within ``target``."""
    reached = [p for p in points if p["stepper"] in names and p["error"] <= target]
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
    found = solvers()
    peers = [name for name in found if name not in ENGINE]
    if not peers:
        print("neither jax-cfd nor exponax is installed (pip install -e \".[bench]\"): the engine's steppers "
              "alone\n")
    rivals = ("the best peer", peers) if peers else ("etdrk4", ["etdrk4"])
    ours = ENGINE if peers else ["cn_rk4"]
    summary = []
    for n in args.cases:
        batch, duration = CASES[n]
        points = measure(n, args.repeats, found)
        print(f"| {n}², batch {batch}, T = {duration:g} | precision | dt | error | seconds |\n|---|---|---|---|---|")
        for p in points:
            print(f"| {p['stepper']} | {p['precision']} | {p['dt']:g} | {p['error']:.2e} | {p['seconds']:.3f} |")
        print()
        summary += [(n, batch, duration, target, fastest(points, ours, target), fastest(points, rivals[1], target))
                    for target in TARGETS]
    mine = "the engine's" if peers else "cn_rk4's"
    print(f"| grid, batch, T | error target | {mine} fastest | {rivals[0]}'s fastest | time ratio, {mine} / "
          f"{rivals[0]}'s |\n|---|---|---|---|---|")
    for n, batch, duration, target, base, best in summary:
        ratio = f"{base['seconds'] / best['seconds']:.2f}" if base and best else "—"
        print(f"| {n}², {batch}, T = {duration:g} | {target:g} | {_cell(base)} | {_cell(best)} | {ratio} |")


def _cell(point: dict | None) -> str:
    return (f"{point['stepper']} {point['precision']}, dt {point['dt']:g}: {point['seconds']:.3f} s" if point
            else "none reaches it")


if __name__ == "__main__":
    main_publishing("solver_work_precision", main)
