"""Datasets on demand: generate by parameters into the data folder, cached under a name that encodes them.

``ensure(config)`` returns the name of the dataset for a generator config, generating it only when the folder
does not hold it yet (an interrupted Kolmogorov run resumes). ``install_defaults()`` puts the built-in
datasets in place for a new user's first screen: Kolmogorov (saved every 0.5, and every 0.02 for the PDD
predictor), two-scale Lorenz-96, QG-jet and stochastic Allen–Cahn test sets shipped in ``assets/`` (copied) and a
GRF set (generated in under a second).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import param
import xarray as xr

from engine.checkpoints import load_checkpoint
from engine.config import AllenCahnConfig, GRFConfig, KolmogorovConfig, Lorenz96Config, QGConfig, options
from engine.data.allen_cahn import simulate_allen_cahn
from engine.data.grf import generate_grf
from engine.data.io import write_dataset
from engine.data.kolmogorov import simulate_kolmogorov
from engine.data.lorenz96 import simulate_lorenz96
from engine.data.qg import simulate_qg
from engine.data.sequences import same_spacing
from engine.data.store import ASSETS, DataStore, parameter_digest
from engine.devices import check_memory, resolve_device
from engine.files import check_writable, copy_file

GENERATOR_NAMES = {GRFConfig: "grf", KolmogorovConfig: "kolmogorov", QGConfig: "qg", Lorenz96Config: "lorenz96",
                   AllenCahnConfig: "allen-cahn"}
GENERATOR_CONFIGS = {name: cls for cls, name in GENERATOR_NAMES.items()}  # a generator's config by its name

# The shipped Kolmogorov set: 64², 4 held-out trajectories (seed 1) × 50 snapshots, 2.8 MiB; models train on
# seed-0 data made with `python -m engine data kolmogorov` and are evaluated on this one.
SHIPPED_KOLMOGOROV = dict(size=64, trajectories=4, snapshots=50, seed=1)
SHIPPED_FILE = "kolmogorov-64-test.nc"
DEFAULT_GRF = dict(size=64, count=256, seed=0)
# The shipped Lorenz-96 set: K = 32, J = 4, 2 held-out trajectories (seed 1) × 400 snapshots, 0.5 MiB
SHIPPED_LORENZ96 = dict(trajectories=2, snapshots=400, seed=1)
SHIPPED_LORENZ96_FILE = "lorenz96-32-test.nc"
# The shipped PDD test set: the same flow saved every 0.02 (the shipped predictor's Δt), 8 held-out trajectories
# (seed 1) × 16 snapshots, 2 MiB
SHIPPED_KOLMOGOROV_FINE = dict(size=64, trajectories=8, snapshots=16, save_interval=0.02, seed=1)
SHIPPED_KOLMOGOROV_FINE_FILE = "kolmogorov-64-dt0.02-test.nc"
# The shipped QG jet set: 64², 2 trajectories (seed 1) × 40 snapshots 36000 s apart after 3·10⁸ s, both layers, 2.6 MiB
SHIPPED_QG = dict(size=64, trajectories=2, snapshots=40, seed=1)
SHIPPED_QG_FILE = "qg-64-test.nc"
# The shipped Allen–Cahn set: 64², 4 chains (seed 1) × 40 snapshots 2 apart after a spin-up of 200, 2.1 MiB
SHIPPED_ALLEN_CAHN = dict(size=64, trajectories=4, snapshots=40, seed=1)
SHIPPED_ALLEN_CAHN_FILE = "allen-cahn-64-test.nc"


def cached_name(config: param.Parameterized) -> str:
    """``kind-size-digest.nc``: the digest covers every parameter except the device (``parameter_digest``)."""
    kind = GENERATOR_NAMES[type(config)]
    size = getattr(config, "size", getattr(config, "slow", ""))
    return f"{kind}-{size}-{parameter_digest(options(config))}.nc"


# The trajectory solvers, each with its config; all but Lorenz-96 also resume from a state file.
TRAJECTORY_SOLVERS = {KolmogorovConfig: simulate_kolmogorov, QGConfig: simulate_qg, Lorenz96Config: simulate_lorenz96,
                      AllenCahnConfig: simulate_allen_cahn}
RESUMABLE = (KolmogorovConfig, QGConfig, AllenCahnConfig)


def generate_dataset(config: param.Parameterized, callback: Callable[[dict], None] | None = None,
                     state_path: Path | None = None) -> xr.Dataset:
    """The dataset for ``config`` from its generator (the RESUMABLE ones keep their state at ``state_path``)."""
    if isinstance(config, GRFConfig):
        return generate_grf(config)
    simulate = TRAJECTORY_SOLVERS[type(config)]
    return simulate(config, callback, state_path) if isinstance(config, RESUMABLE) else simulate(config, callback)


def generation_bytes(config: param.Parameterized) -> float:
    """Memory a generator needs, estimated: GRFs ~48 B per value (complex white noise, its colouring, the float32
    result); Kolmogorov the float32 snapshots plus ~40 float64 working fields per trajectory; QG twice that (two
    layers); Allen–Cahn and Lorenz-96 likewise."""
    if isinstance(config, GRFConfig):
        return 48.0 * config.count * config.size**2
    if isinstance(config, (KolmogorovConfig, AllenCahnConfig)):
        return config.trajectories * config.size**2 * (4.0 * config.snapshots + 8.0 * 40)
    if isinstance(config, QGConfig):
        return 2 * config.trajectories * config.size**2 * (4.0 * config.snapshots + 8.0 * 40)
    sites = config.slow * (1 + config.fast_per_slow)
    return config.trajectories * sites * (4.0 * config.snapshots + 8.0 * 40)


def output_bytes(config: param.Parameterized) -> float:
    """A generated dataset's size on disk, at most: its float32 values (compression only shrinks them)."""
    if isinstance(config, GRFConfig):
        return 4.0 * config.count * config.size**2
    if isinstance(config, Lorenz96Config):
        return 4.0 * config.trajectories * config.snapshots * config.slow * (1 + config.fast_per_slow)
    layers = 2 if isinstance(config, QGConfig) else 1
    return 4.0 * layers * config.trajectories * config.snapshots * config.size**2


def write_generated(config: param.Parameterized, store: DataStore, name: str,
                    callback: Callable[[dict], None] | None = None) -> Path:
    """Generate ``config``'s dataset into ``name`` (atomically); an interrupted Kolmogorov run resumes from the
    state it left beside the target, which is removed once the dataset is written."""
    check_memory(required=generation_bytes(config), what=f"generating {name}",
                 device=resolve_device(getattr(config, "device", "cpu")),
                 fix="ask for fewer fields or trajectories, or a smaller size")
    check_writable(store.path(name), need=output_bytes(config), what=name)
    partial = store.partial_path(name)
    path = write_dataset(generate_dataset(config, callback, partial), store.path(name))
    partial.unlink(missing_ok=True)
    return path


def ensure(config: param.Parameterized, store: DataStore | None = None,
           callback: Callable[[dict], None] | None = None) -> str:
    """The cached dataset's name, generating (or resuming) it first if the folder lacks it."""
    store = store or DataStore()
    name = cached_name(config)
    if not store.path(name).exists():
        write_generated(config, store, name, callback)
    return name


SHIPPED_CHECKPOINTS = ASSETS / "checkpoints"


def install_defaults(store: DataStore | None = None) -> list[str]:
    """Put the built-in datasets (and the shipped checkpoints, as ``runs/shipped-<name>/checkpoint.pt``) in the
    folder, once; returns the datasets' names: Kolmogorov, GRF, Lorenz-96, Kolmogorov saved every 0.02, QG jet,
    Allen–Cahn."""
    store = store or DataStore()
    for checkpoint in sorted(SHIPPED_CHECKPOINTS.glob("*.pt")):
        target = store.path(f"runs/shipped-{checkpoint.stem}/checkpoint.pt")
        if not target.exists():
            copy_file(checkpoint, target)
    names = []
    for config, shipped in ((KolmogorovConfig(**SHIPPED_KOLMOGOROV), SHIPPED_FILE),
                            (Lorenz96Config(**SHIPPED_LORENZ96), SHIPPED_LORENZ96_FILE),
                            (KolmogorovConfig(**SHIPPED_KOLMOGOROV_FINE), SHIPPED_KOLMOGOROV_FINE_FILE),
                            (QGConfig(**SHIPPED_QG), SHIPPED_QG_FILE),
                            (AllenCahnConfig(**SHIPPED_ALLEN_CAHN), SHIPPED_ALLEN_CAHN_FILE)):
        names.append(cached_name(config))
        if not store.path(names[-1]).exists():
            copy_file(ASSETS / shipped, store.path(names[-1]))
    return [names[0], ensure(GRFConfig(**DEFAULT_GRF), store), *names[1:]]


def builtin_test_data(store: DataStore, checkpoint: str) -> str:
    """The built-in Kolmogorov test set a checkpoint is judged on: the one saved at the Δt its training data had."""
    names = install_defaults(store)
    trained_dt = load_checkpoint(store.path(checkpoint), "cpu").get("data", {}).get("dt")
    fine = trained_dt is not None and same_spacing(trained_dt, SHIPPED_KOLMOGOROV_FINE["save_interval"])
    return names[3] if fine else names[0]
