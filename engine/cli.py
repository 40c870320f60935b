"""Command line: ``python -m engine data grf|kolmogorov|qg|lorenz96|allen-cahn|coarse|import|list``, ``train``,
``sample``, ``export``, ``rollout``, ``superres``, ``animate``, ``claims``: parsing only; each command calls one
``engine.pipelines`` function (docs/architecture.md).

Flags are generated from the ``param`` configs in ``engine.config`` (their docs are the help texts, their
bounds are checked there). Dataset names live in the data folder (``--data-dir``, else ``$EMULATOR_STUDIO_DATA``,
else ``~/.cache/emulator-studio``); paths outside it are refused. Every error exits with status 2 and one line
on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys

import param
from tqdm import tqdm

from engine.animation import write_animation
from engine.checkpoints import export_checkpoint
from engine.cluster import SCHEDULER_VARIABLE, scheduler_address
from engine.config import (
    AllenCahnConfig,
    CoarseConfig,
    ForecastConfig,
    ForecastSamplerConfig,
    GRFConfig,
    KolmogorovConfig,
    Lorenz96Config,
    ModelConfig,
    NoiseConfig,
    PDDConfig,
    PDDSamplerConfig,
    QGConfig,
    RolloutConfig,
    SamplerConfig,
    ScheduleConfig,
    TrainingConfig,
)
from engine.data.catalog import builtin_test_data
from engine.data.store import DataStore
from engine.devices import DEVICE_CHOICES
from engine.errors import EngineError
from engine.pipelines.claims import run_claims
from engine.pipelines.coarse_data import coarse_data
from engine.pipelines.generate_data import generate_data
from engine.pipelines.rollout import run_rollout
from engine.pipelines.sample import sample
from engine.pipelines.superres import run_superres
from engine.pipelines.train import train
from engine.process import keep_freed_memory
from engine.spectral import BANDS
from engine.tasks import TASKS

# (config class, flag prefix, {parameter: flag name}) per command; a renamed parameter drops the prefix.
NOISE = (NoiseConfig, "noise-", {"kind": "noise"})
SCHEDULE = (ScheduleConfig, "schedule-", {"kind": "schedule", "beta_form": "beta-form", "gamma_sigma": "gamma-sigma"})
MODEL = (ModelConfig, "model-", {"kind": "model"})
SAMPLER = (SamplerConfig, "", {"method": "sampler", "precision": "sampler-precision", "compile": "sampler-compile"})
TRAINING = (TrainingConfig, "", {})
GRF = (GRFConfig, "", {})
KOLMOGOROV = (KolmogorovConfig, "", {})
LORENZ96 = (Lorenz96Config, "", {})
COARSE = (CoarseConfig, "", {})
FORECAST = (ForecastConfig, "", {})
FORECAST_SAMPLER = (ForecastSamplerConfig, "sampler-", {"method": "sampler", "eps": "eps", "seed": "seed"})
ROLLOUT = (RolloutConfig, "", {})
PDD = (PDDConfig, "pdd-", {"window": "window", "frames": "frames", "std_ratio": "std-ratio",
                           "lam_sampling": "lam-sampling"})
PDD_SAMPLER = (PDDSamplerConfig, "", {"steps": "lam-steps", "method": "sampler", "precision": "sampler-precision",
                                      "compile": "sampler-compile"})
QG = (QGConfig, "", {})
ALLEN_CAHN = (AllenCahnConfig, "", {})
GENERATORS = {"grf": GRF, "kolmogorov": KOLMOGOROV, "qg": QG, "lorenz96": LORENZ96, "allen-cahn": ALLEN_CAHN}


OVERWRITE = "replace --out if it exists (it is never one of the command's inputs)"


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise EngineError(f"{self.prog}: {message}")


def _flag(name: str, prefix: str, renames: dict) -> str:
    return "--" + renames.get(name, prefix + name.replace("_", "-"))


def bounds_text(p: param.Parameter) -> str:
    """A number parameter's bounds in words: ``1 … 4096``, ``> 0``, ``≥ 1`` ('' without bounds)."""
    low, high = getattr(p, "bounds", None) or (None, None)
    low_in, high_in = getattr(p, "inclusive_bounds", (True, True))
    if low is not None and high is not None:
        if low_in and high_in:
            return f"{low} … {high}"
        return f"{low} {'≤' if low_in else '<'} x {'≤' if high_in else '<'} {high}"
    if low is not None:
        return f"{'≥' if low_in else '>'} {low}"
    return f"{'≤' if high_in else '<'} {high}" if high is not None else ""


def add_config_flags(parser: argparse.ArgumentParser, spec, skip: tuple[str, ...] = ()) -> None:
    """One flag per parameter of the config class, typed and documented from its ``param`` definition (its doc,
    bounds and default)."""
    cls, prefix, renames = spec
    for name, p in cls.param.objects("existing").items():
        if name == "name" or name in skip:
            continue
        bounds = bounds_text(p) if isinstance(p, param.Number) else ""
        kwargs = {"dest": f"{cls.__name__}.{name}", "default": None, "metavar": name.upper(),
                  "help": f"{p.doc}{'; ' + bounds if bounds else ''} (default: {p.default})"}
        if isinstance(p, param.Boolean):
            kwargs["action"] = argparse.BooleanOptionalAction
            del kwargs["metavar"]
        elif isinstance(p, param.Selector):
            kwargs["choices"] = p.objects
        elif isinstance(p, param.Integer):
            kwargs["type"] = int
        elif isinstance(p, param.Number):
            kwargs["type"] = float
        parser.add_argument(_flag(name, prefix, renames), **kwargs)


def config_from_args(args: argparse.Namespace, spec):
    """Build the config from parsed flags; a value out of bounds names its flag."""
    cls, prefix, renames = spec
    config = cls()
    for name in cls.param.objects("existing"):
        value = getattr(args, f"{cls.__name__}.{name}", None)
        if name == "name" or value is None:
            continue
        try:
            setattr(config, name, value)
        except ValueError as err:
            raise EngineError(f"{_flag(name, prefix, renames)}: {err}") from None
    return config


def add_scheduler(parser: argparse.ArgumentParser, parts: str) -> None:
    """``--scheduler``: the Dask cluster that runs ``parts`` (default $EMULATOR_STUDIO_SCHEDULER, else here)."""
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help=f"Dask scheduler, e.g. tcp://host:8786, that runs {parts} (default: "
                             f"${SCHEDULER_VARIABLE}, else this process); the data folder must be shared")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m engine", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="data folder (default: $EMULATOR_STUDIO_DATA or ~/.cache/emulator-studio)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    data = commands.add_parser("data", help="generate, coarse-grain, import or list datasets")
    kinds = data.add_subparsers(dest="kind", required=True, parser_class=_Parser)
    helps = {"grf": "Gaussian random fields σ²(|k|² + ℓ²)^(−s)",
             "kolmogorov": "2-D Kolmogorov flow vorticity(trajectory, time, y, x); Ctrl-C keeps its state, rerun "
                           "resumes",
             "qg": "two-layer quasi-geostrophic jet pv_upper, pv_lower(trajectory, time, y, x) on a β-plane; Ctrl-C "
                   "keeps its state, rerun resumes",
             "lorenz96": "two-scale Lorenz-96 slow(trajectory, time, k), fast(trajectory, time, j)",
             "allen-cahn": "stochastic Allen–Cahn u(trajectory, time, y, x) sampled from its invariant measure "
                           "(non-Gaussian); Ctrl-C keeps its state, rerun resumes"}
    for kind, spec in GENERATORS.items():
        generator = kinds.add_parser(kind, help=helps[kind])
        add_config_flags(generator, spec)
        generator.add_argument("--out", help="dataset name in the data folder, .nc or .zarr "
                                             "(default: a name encoding the parameters, reused if present)")
        add_overwrite(generator)
        if kind != "grf":
            add_scheduler(generator, "the trajectories (shares of the same seeded batch)")
    coarse = kinds.add_parser("coarse", help="coarse-grain a dataset at diffusion scale λ (both the noisy sample "
                                             "and its deterministic part e^(μλ)x)")
    coarse.add_argument("--data", required=True, help="dataset name in the data folder")
    coarse.add_argument("--variable", help="variable to coarse-grain (default: the first with dims (..., y, x), "
                                           "else the first variable)")
    add_config_flags(coarse, COARSE)
    coarse.add_argument("--out", help="output name (default: <data>-lam<λ>.nc)")
    add_overwrite(coarse)
    imported = kinds.add_parser("import", help="validate a netCDF/zarr file of fields (..., y, x) and copy it in")
    imported.add_argument("file", help="the file to import")
    imported.add_argument("--name", help="name in the data folder (default: the file's name)")
    imported.add_argument("--variable", help="the field variable (default: the first with dims (..., y, x))")
    listed = kinds.add_parser("list", help="the datasets in the data folder with their variables and sizes")
    listed.add_argument("--json", action="store_true", help="print a JSON list")

    trainer = commands.add_parser("train", help="train a generator, an emulator or a refiner on a dataset "
                                                "(data-parallel under torchrun: docs/scaling.md)")
    trainer.add_argument("--task", choices=TASKS, default="generate",
                       help="generate: a drift from noise to the fields; refiner: the same with white noise and the vp "
                            "schedule, to refine rollouts; forecast: the stochastic-interpolant emulator u_n → u_n+1; "
                            "noise_baseline: a conditional generator from Gaussian noise; diffusion: an EDM diffusion "
                            "model of u_n+1 given u_n (many steps); pointwise: a residual U-Net; "
                            "pdd: the λ-conditioned predictor of predictor-driven diffusion (default: generate)")
    trainer.add_argument("--data", required=True, help="dataset name in the data folder (a variable with dims (..., y, "
                                                       "x); "
                                                     "emulators need (..., time, y, x))")
    trainer.add_argument("--out", required=True, help="run folder in the data folder for checkpoint.pt, e.g. runs/si "
                                                    "(resumed if present)")
    trainer.add_argument("--variable", help="data variable to train on (default: the first with dims (..., y, x))")
    for spec in (NOISE, SCHEDULE, MODEL, TRAINING):
        add_config_flags(trainer, spec)
    add_config_flags(trainer, FORECAST, skip=("task",))
    add_config_flags(trainer, PDD)

    sampling = commands.add_parser("sample", help="generate samples with the exact or a trained drift")
    sampling.add_argument("--data", required=True, help="dataset (name in the data folder) whose spectrum defines the "
                                                      "noise and the errors")
    sampling.add_argument("--checkpoint", help="trained checkpoint, name in the data folder (with --model unet)")
    sampling.add_argument("--count", type=int, default=64, help="number of samples (default: 64)")
    sampling.add_argument("--out", help="name in the data folder for the samples (.nc or .zarr)")
    add_overwrite(sampling)
    sampling.add_argument("--variable", help="data variable (default: the first with dims (..., y, x))")
    sampling.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="default: auto")
    sampling.add_argument("--json", action="store_true", help="print one JSON object with NFE, time and errors")
    for spec in (NOISE, SCHEDULE, MODEL, SAMPLER):
        add_config_flags(sampling, spec)

    export = commands.add_parser("export", help="write an inference-only copy of a checkpoint (EMA weights, configs)")
    export.add_argument("--checkpoint", required=True, help="a training run's checkpoint.pt (name in the data folder)")
    export.add_argument("--out", required=True, help="name of the copy in the data folder")
    add_overwrite(export)

    roll = commands.add_parser("rollout", help="roll a trained emulator out autoregressively from test data")
    roll.add_argument("--checkpoint", required=True, help="checkpoint of a forecast, noise_baseline, diffusion or "
                                                          "pointwise run (name in the data folder, e.g. "
                                                          "runs/si/checkpoint.pt)")
    roll.add_argument("--data", help="test trajectories (name in the data folder; default: the built-in Kolmogorov "
                                     "set saved at the checkpoint's Δt)")
    roll.add_argument("--variable", help="data variable (default: the first with dims (..., y, x))")
    roll.add_argument("--refiner", help="checkpoint of a refiner (train --task refiner) applied every --refine-every "
                                        "steps")
    roll.add_argument("--out", help="name in the data folder for the rollout (.nc or .zarr)")
    add_overwrite(roll)
    roll.add_argument("--json", action="store_true", help="print one JSON object: VRMSE and band errors per lead "
                                                          "time, blow-up step (or null), seconds")
    add_scheduler(roll, "the initial conditions (one task each; the same numbers as here)")
    add_config_flags(roll, ROLLOUT)
    add_config_flags(roll, FORECAST_SAMPLER)

    superres = commands.add_parser("superres", help="super-resolve coarse-grained test data (or generate from noise) "
                                                    "with a PDD predictor by reverse-λ integration")
    superres.add_argument("--checkpoint", required=True, help="checkpoint of a pdd run (name in the data folder)")
    superres.add_argument("--data", help="test trajectories (name in the data folder; default: the built-in Kolmogorov "
                                         "set saved at the checkpoint's Δt)")
    superres.add_argument("--variable", help="data variable (default: the first field, or the first 1-D variable)")
    superres.add_argument("--sequences", type=int, default=1, help="sequences of the model's frame count to "
                                                                   "super-resolve "
                                                                  "(default: 1)")
    superres.add_argument("--from-noise", action="store_true", help="start from the Gaussian with the λ-marginal's "
                                                                    "variance e^(2μλ)P_k + Q_k(λ) per mode "
                                                                    "instead of the coarse-grained data (generation; "
                                                                    "use --lam 1)")
    superres.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="default: auto")
    superres.add_argument("--out", help="name in the data folder for coarse input, output, truth and spectra (.nc or "
                                        ".zarr)")
    add_overwrite(superres)
    superres.add_argument("--json", action="store_true", help="print one JSON object: per-band spectral errors of the "
                                                              "input and the output, seconds, NFE")
    add_config_flags(superres, PDD_SAMPLER)

    claims = commands.add_parser("claims", help="run each seed paper's headline claim at a CPU size and say whether "
                                                "it holds (one row per claim)")
    claims.add_argument("--quick", action="store_true", help="the smallest sizes (about a minute on 2 cores)")
    claims.add_argument("--json", action="store_true", help="print a JSON list of {paper, claim, paper_figure, ours, "
                                                            "holds}")
    add_scheduler(claims, "one task per claim")

    animate = commands.add_parser("animate",
                                  help="write a rollout as a GIF or MP4: the emulated field beside the truth")
    animate.add_argument("--rollout", required=True, help="a rollout written by `rollout --out` (name in the data "
                                                          "folder)")
    animate.add_argument("--out", required=True, help="name in the data folder, .gif (Pillow) or .mp4 (needs ffmpeg: "
                                                      "pip install imageio-ffmpeg)")
    add_overwrite(animate)
    animate.add_argument("--fps", type=float, default=10.0, help="frames per second, one frame per saved step "
                                                                 "(default: 10)")
    animate.add_argument("--scale", type=int, default=4, help="pixels per grid point (default: 4)")
    return parser


class _ProgressBar:
    """A tqdm bar driven by engine progress events, opened at the first event (errors before it stay one line)."""

    def __init__(self, unit: str):
        self.unit, self.bar = unit, None

    def __call__(self, event: dict) -> None:
        if "steps" not in event:  # checkpoints and previews: nothing to count
            return
        if self.bar is None:
            self.bar = tqdm(total=event["steps"], unit=self.unit, dynamic_ncols=True)
        if event["kind"] == "resumed":
            self.bar.write(f"resuming an interrupted run at {self.unit} {event['step']} of {event['steps']}")
        self.bar.update(event["step"] - self.bar.n)
        if "loss" in event:
            self.bar.set_postfix(loss=f"{event['loss']:.4f}")

    def __enter__(self):
        return self

    def __exit__(self, *_):
        if self.bar is not None:
            self.bar.close()


def _generate(args, store: DataStore) -> None:
    with _ProgressBar("save") as report:
        result = generate_data(store=store, config=config_from_args(args, GENERATORS[args.kind]), name=args.out,
                               overwrite=args.overwrite, callback=report,
                               scheduler=None if args.kind == "grf" else scheduler_address(args.scheduler))
    print(f"{result.name} is already in {store.root} (same parameters)" if result.reused
          else f"wrote {result.name} in {store.root}")


def _coarse(args, store: DataStore) -> None:
    result = coarse_data(store=store, data=args.data, config=config_from_args(args, COARSE), variable=args.variable,
                         out=args.out, overwrite=args.overwrite)
    print(f"wrote {result.name} in {store.root}")


def _list(args, store: DataStore) -> None:
    listing = store.scan()
    if listing.skipped:
        print(f"warning: {listing.warning()}", file=sys.stderr)
    if args.json:
        print(json.dumps(listing.entries))
        return
    if not listing.entries:
        print(f"no datasets in {store.root} yet: try `python -m engine data kolmogorov`")
    for entry in listing.entries:
        shapes = ", ".join(f"{v}{tuple(sizes.values())}" for v, sizes in entry.get("variables", {}).items())
        print(f"{entry['name']:40s} {entry['mib']:8.2f} MiB  {entry.get('generator', '?'):26s} {shapes}")


def _data(args) -> None:
    store = DataStore(args.data_dir)
    if args.kind == "import":
        print(f"imported {store.import_file(args.file, args.name, args.variable).name} into {store.root}")
    elif args.kind == "coarse":
        _coarse(args, store)
    elif args.kind == "list":
        _list(args, store)
    else:
        _generate(args, store)


def _train(args) -> None:
    with _ProgressBar("step") as bar:
        def report(event: dict) -> None:
            if event["kind"] == "started":
                print(f"training on {event['device']}, world size {event['world_size']}"
                      + (f" ({event['backend']})" if event["backend"] else ""), flush=True)
            bar(event)

        result = train(store=DataStore(args.data_dir), task=args.task, data=args.data, out=args.out,
                       variable=args.variable, noise=config_from_args(args, NOISE),
                       schedule=config_from_args(args, SCHEDULE), model=config_from_args(args, MODEL),
                       training=config_from_args(args, TRAINING), forecast=config_from_args(args, FORECAST),
                       pdd=config_from_args(args, PDD), callback=report)
    if result.rank == 0:
        print(f"wrote {result.checkpoint}")


def _rollout(args) -> None:
    store = DataStore(args.data_dir)
    result = run_rollout(store=store, checkpoint=args.checkpoint,
                         data=args.data or builtin_test_data(store, args.checkpoint),
                         config=config_from_args(args, ROLLOUT), sampler=config_from_args(args, FORECAST_SAMPLER),
                         refiner=args.refiner, variable=args.variable, out=args.out, overwrite=args.overwrite,
                         scheduler=scheduler_address(args.scheduler))
    summary, done = result.summary, result.rollout
    if args.json:
        print(json.dumps(summary))
    else:
        vrmse = dict(zip(summary["lead_steps"], summary["vrmse"]))
        print(f"steps {done.steps_done}, blow-up step {done.blowup_step}, {done.seconds:.2f} s, VRMSE by lead: "
              + ", ".join(f"{k}: {v:.3f}" for k, v in list(vrmse.items())[:10]))


def _superres(args) -> None:
    store = DataStore(args.data_dir)
    with _ProgressBar("λ step") as bar:
        result = run_superres(store=store, checkpoint=args.checkpoint,
                              data=args.data or builtin_test_data(store, args.checkpoint),
                              sampler=config_from_args(args, PDD_SAMPLER), sequences=args.sequences,
                              variable=args.variable, out=args.out, overwrite=args.overwrite,
                              from_noise=args.from_noise, device=args.device,
                              callback=None if args.json else bar)
    summary = {key: value for key, value in result.summary.items() if key != "spectra"}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"λ = {summary['lam']} → 0 in {summary['steps']} steps, {summary['seconds']:.2f} s; "
              "mean |log S/S_truth| " + ", ".join(f"{band}: input {summary['input_error'][band]:.3f} → output "
                                                  f"{summary['output_error'][band]:.3f}" for band in BANDS))


def _sample(args) -> None:
    result = sample(store=DataStore(args.data_dir), data=args.data, model=config_from_args(args, MODEL),
                    noise=config_from_args(args, NOISE), schedule=config_from_args(args, SCHEDULE),
                    sampler=config_from_args(args, SAMPLER), count=args.count, checkpoint=args.checkpoint,
                    variable=args.variable, device=args.device, out=args.out, overwrite=args.overwrite)
    if args.json:
        print(json.dumps(result.summary))
    else:
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.summary.items()))


def _export(args) -> None:
    store = DataStore(args.data_dir)
    target = store.output_path(args.out, inputs=(args.checkpoint,), overwrite=args.overwrite)
    path = export_checkpoint(store.path(args.checkpoint), target)
    print(f"wrote {path.name} ({path.stat().st_size / 2**20:.2f} MiB) in {path.parent}")


def _claims(args) -> None:
    with _ProgressBar("claim") as bar:
        rows = run_claims(store=DataStore(args.data_dir), quick=args.quick, callback=None if args.json else bar,
                          scheduler=scheduler_address(args.scheduler))
    if args.json:
        print(json.dumps([row.as_dict() for row in rows]))
        return
    print("| paper | claim | the paper's figure | ours | holds |\n|---|---|---|---|---|")
    for row in rows:
        print(f"| {row.paper} | {row.claim} | {row.paper_figure} | {row.ours} | {'yes' if row.holds else 'no'} |")


def _animate(args) -> None:
    store = DataStore(args.data_dir)
    target = store.output_path(args.out, inputs=(args.rollout,), overwrite=args.overwrite)
    with store.open(args.rollout) as rollout:
        path = write_animation(rollout, target, args.fps, args.scale)
    print(f"wrote {path.name} ({path.stat().st_size / 2**20:.2f} MiB) in {path.parent}")


def main(argv: list[str] | None = None) -> int:
    keep_freed_memory()
    try:
        args = build_parser().parse_args(argv)
        {"data": _data, "train": _train, "sample": _sample, "rollout": _rollout, "export": _export,
         "superres": _superres, "animate": _animate, "claims": _claims}[args.command](args)
    except (EngineError, FileNotFoundError, PermissionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
