"""Command line: ``python -m engine data grf|kolmogorov|lorenz96 | train | sample``.

Flags are generated from the ``param`` configs in ``engine.config`` (their docs are the help texts, their
bounds are checked there). Every error exits with status 2 and one line on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import param

from engine.config import GRFConfig, KolmogorovConfig, Lorenz96Config, ModelConfig, NoiseConfig, SamplerConfig, ScheduleConfig, TrainingConfig
from engine.errors import EngineError

# (config class, flag prefix, {parameter: flag name}) per command; a renamed parameter drops the prefix.
NOISE = (NoiseConfig, "noise-", {"kind": "noise"})
SCHEDULE = (ScheduleConfig, "schedule-", {"kind": "schedule", "beta_form": "beta-form", "gamma_sigma": "gamma-sigma"})
MODEL = (ModelConfig, "model-", {"kind": "model"})
SAMPLER = (SamplerConfig, "", {"method": "sampler"})
TRAINING = (TrainingConfig, "", {})
GRF = (GRFConfig, "", {})
KOLMOGOROV = (KolmogorovConfig, "", {})
LORENZ96 = (Lorenz96Config, "", {})


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise EngineError(f"{self.prog}: {message}")


def _flag(name: str, prefix: str, renames: dict) -> str:
    return "--" + renames.get(name, prefix + name.replace("_", "-"))


def add_config_flags(parser: argparse.ArgumentParser, spec) -> None:
    """One flag per parameter of the config class, typed and documented from its ``param`` definition."""
    cls, prefix, renames = spec
    for name, p in cls.param.objects("existing").items():
        if name == "name":
            continue
        kwargs = {"dest": f"{cls.__name__}.{name}", "default": None, "help": f"{p.doc} (default: {p.default})"}
        if isinstance(p, param.Selector):
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m engine", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    data = commands.add_parser("data", help="generate a dataset")
    kinds = data.add_subparsers(dest="kind", required=True, parser_class=_Parser)
    grf = kinds.add_parser("grf", help="Gaussian random fields σ²(|k|² + ℓ²)^(−s)")
    add_config_flags(grf, GRF)
    grf.add_argument("--out", required=True, help="output netCDF file")
    kolmogorov = kinds.add_parser("kolmogorov", help="2-D Kolmogorov flow vorticity(trajectory, time, y, x)")
    add_config_flags(kolmogorov, KOLMOGOROV)
    kolmogorov.add_argument("--out", required=True, help="output netCDF file")
    lorenz = kinds.add_parser("lorenz96", help="two-scale Lorenz-96 slow(trajectory, time, k), fast(trajectory, time, j)")
    add_config_flags(lorenz, LORENZ96)
    lorenz.add_argument("--out", required=True, help="output netCDF file")

    train = commands.add_parser("train", help="train a drift network on a dataset")
    train.add_argument("--data", required=True, help="netCDF dataset (a variable with dims (..., y, x))")
    train.add_argument("--out", required=True, help="run folder for checkpoint.pt (resumed if present)")
    train.add_argument("--variable", help="data variable to train on (default: the first with dims (..., y, x))")
    for spec in (NOISE, SCHEDULE, MODEL, TRAINING):
        add_config_flags(train, spec)

    sample = commands.add_parser("sample", help="generate samples with the exact or a trained drift")
    sample.add_argument("--data", required=True, help="dataset whose spectrum defines the noise and the errors")
    sample.add_argument("--checkpoint", help="trained checkpoint (with --model unet)")
    sample.add_argument("--count", type=int, default=64, help="number of samples (default: 64)")
    sample.add_argument("--out", help="output netCDF file for the samples")
    sample.add_argument("--variable", help="data variable (default: the first with dims (..., y, x))")
    sample.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="default: auto")
    sample.add_argument("--json", action="store_true", help="print one JSON object with NFE, time and errors")
    for spec in (NOISE, SCHEDULE, MODEL, SAMPLER):
        add_config_flags(sample, spec)
    return parser


def _data(args) -> None:
    from engine.data.store import write_netcdf

    if args.kind == "grf":
        from engine.data.grf import generate_grf

        ds = generate_grf(config_from_args(args, GRF))
    else:
        from tqdm import tqdm

        if args.kind == "kolmogorov":
            from engine.data.kolmogorov import simulate

            config = config_from_args(args, KOLMOGOROV)
        else:
            from engine.data.lorenz96 import simulate

            config = config_from_args(args, LORENZ96)
        with tqdm(unit="save", dynamic_ncols=True) as bar:
            def report(event):
                bar.total = event["steps"]
                bar.update(event["step"] - bar.n)

            ds = simulate(config, report)
    print(f"wrote {write_netcdf(ds, args.out)}")


def _train(args) -> None:
    from tqdm import tqdm

    from engine.data.store import load_fields
    from engine.training import Trainer

    configs = [config_from_args(args, spec) for spec in (NOISE, SCHEDULE, MODEL, TRAINING)]
    training = configs[-1]
    data = load_fields(args.data, args.variable)
    bar = tqdm(total=training.steps, unit="step", dynamic_ncols=True)

    def report(event: dict) -> None:
        if event["kind"] == "progress":
            bar.update(event["step"] - bar.n)
            bar.set_postfix(loss=f"{event['loss']:.4f}")

    trainer = Trainer(data, *configs, args.out, report, data_source=str(args.data))
    path = trainer.run()
    bar.close()
    print(f"wrote {path}")


def _sample(args) -> None:
    from engine.data.store import load_fields, write_netcdf
    from engine.generation import generate, make_setup, samples_dataset
    from engine.training import resolve_device

    if args.count < 1:
        raise EngineError(f"--count must be at least 1, got {args.count}")
    model, sampler = config_from_args(args, MODEL), config_from_args(args, SAMPLER)
    noise, schedule = config_from_args(args, NOISE), config_from_args(args, SCHEDULE)
    device = resolve_device(args.device)
    data = load_fields(args.data, args.variable)
    setup = make_setup(model, data, noise, schedule, args.checkpoint, device)
    result = generate(setup, sampler, args.count, device)
    if args.out:
        write_netcdf(samples_dataset(result, data, setup, sampler), args.out)
    summary = {"nfe": result.nfe, "seconds": round(result.seconds, 4), "count": args.count, **result.errors,
               "out": args.out}
    if args.json:
        print(json.dumps(summary))
    else:
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()))


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        {"data": _data, "train": _train, "sample": _sample}[args.command](args)
    except (EngineError, FileNotFoundError, PermissionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
