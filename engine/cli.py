"""Command line: ``python -m engine data grf|kolmogorov|qg|lorenz96|allen-cahn|coarse|import|list``, ``train``,
``sample``, ``export``, ``rollout``, ``superres``, ``animate``, ``claims``: parsing only. A command of a pipeline
builds that pipeline's request (``engine.pipelines.request``: the same the dashboard's jobs build) from its flags
and runs it (docs/architecture.md).

Flags are made from the requests' fields: their plain options (with the help declared beside the pipeline) and
their ``param`` configs (each parameter's doc is its help text; its bounds are checked there). Dataset names live
in the data folder (``--data-dir``, else ``$EMULATOR_STUDIO_DATA``, else ``~/.cache/emulator-studio``); paths
outside it are refused. Every error exits with status 2 and one line
on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import param
from tqdm import tqdm

from engine.animation import write_animation
from engine.checkpoints import export_checkpoint
from engine.cluster import scheduler_address
from engine.data.catalog import GENERATOR_CONFIGS
from engine.data.store import DataStore
from engine.errors import EngineError
from engine.pipelines.claims import run_claims
from engine.pipelines.coarse_data import CoarseRequest
from engine.pipelines.generate_data import GENERATOR_HELP, DataRequest
from engine.pipelines.request import OVERWRITE, SCHEDULER, Request
from engine.pipelines.rollout import RolloutRequest
from engine.pipelines.sample import SampleRequest
from engine.pipelines.superres import SuperresRequest
from engine.pipelines.train import TrainRequest
from engine.process import keep_freed_memory
from engine.spectral import BANDS

JSON_HELP = {"sample": "print one JSON object with NFE, time and errors",
             "rollout": "print one JSON object: VRMSE and band errors per lead time, blow-up step (or null), seconds",
             "superres": "print one JSON object: per-band spectral errors of the input and the output, seconds, NFE"}


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
    bounds and default); ``spec`` is (class, prefix, renames)."""
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
    cls, prefix, renames = spec[:3]
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


def add_request_flags(parser: argparse.ArgumentParser, request: type[Request], skip: tuple[str, ...] = ()) -> None:
    """The flags of a request's fields, in their order: an ``option`` is one flag, a ``configs`` field one per
    parameter; fields without either (set by the caller) and the ``skip``ped ones have none."""
    for spec in dataclasses.fields(request):
        meta = spec.metadata
        if spec.name in skip:
            continue
        if "config" in meta:
            cls, prefix, renames, left_out = meta["config"]
            add_config_flags(parser, (cls, prefix, renames), skip=left_out)
        elif "help" in meta:
            flag = "--" + (meta["flag"] or spec.name).replace("_", "-")
            parser.add_argument(flag, dest=spec.name, default=spec.default, required=meta["required"],
                                help=meta["help"], **meta["argparse"])


def request_from_args(request: type[Request], args: argparse.Namespace, **given) -> Request:
    """The request from parsed flags (a field without a flag takes ``given``, else its default)."""
    values = {}
    for spec in dataclasses.fields(request):
        if "config" in spec.metadata:
            values[spec.name] = config_from_args(args, spec.metadata["config"])
        elif "help" in spec.metadata and hasattr(args, spec.name):
            values[spec.name] = getattr(args, spec.name)
    return request(**{**values, **given})


def _data_commands(commands) -> None:
    data = commands.add_parser("data", help="generate, coarse-grain, import or list datasets")
    kinds = data.add_subparsers(dest="kind", required=True, parser_class=_Parser)
    for kind, cls in GENERATOR_CONFIGS.items():
        generator = kinds.add_parser(kind, help=GENERATOR_HELP[kind])
        add_config_flags(generator, (cls, "", {}))
        add_request_flags(generator, DataRequest, skip=("scheduler",) if kind == "grf" else ())
    add_request_flags(kinds.add_parser("coarse", help=CoarseRequest.summary), CoarseRequest)
    imported = kinds.add_parser("import", help="validate a netCDF/zarr file of fields (..., y, x), or a 2-D periodic "
                                               "HDF5 file of The Well, and copy it in (as netCDF)")
    imported.add_argument("file", help="the file to import")
    imported.add_argument("--name", help="name in the data folder (default: the file's name)")
    imported.add_argument("--variable", help="the field variable (default: the first with dims (..., y, x))")
    listed = kinds.add_parser("list", help="the datasets in the data folder with their variables and sizes")
    listed.add_argument("--json", action="store_true", help="print a JSON list")


def _other_commands(commands) -> None:
    export = commands.add_parser("export", help="write an inference-only copy of a checkpoint (EMA weights, configs)")
    export.add_argument("--checkpoint", required=True, help="a training run's checkpoint.pt (name in the data folder)")
    export.add_argument("--out", required=True, help="name of the copy in the data folder")
    export.add_argument("--overwrite", action="store_true", help=OVERWRITE)
    claims = commands.add_parser("claims", help="run each seed paper's headline claim at a CPU size and say whether "
                                                "it holds (one row per claim)")
    claims.add_argument("--quick", action="store_true", help="the smallest sizes (about a minute on 2 cores)")
    claims.add_argument("--json", action="store_true", help="print a JSON list of {paper, claim, paper_figure, ours, "
                                                            "holds}")
    claims.add_argument("--scheduler", metavar="ADDRESS", help=SCHEDULER.format(parts="one task per claim"))
    animate = commands.add_parser("animate", help="write a rollout as a GIF or MP4: the emulated field beside the "
                                                  "truth")
    animate.add_argument("--rollout", required=True, help="a rollout written by `rollout --out` (name in the data "
                                                          "folder)")
    animate.add_argument("--out", required=True, help="name in the data folder, .gif (Pillow) or .mp4 (needs ffmpeg: "
                                                      "pip install imageio-ffmpeg)")
    animate.add_argument("--overwrite", action="store_true", help=OVERWRITE)
    animate.add_argument("--fps", type=float, default=10.0, help="frames per second, one frame per saved step "
                                                                 "(default: 10)")
    animate.add_argument("--scale", type=int, default=4, help="pixels per grid point (default: 4)")
    animate.add_argument("--variable", help="the field to animate (default: every field of the state, one row each)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m engine", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="data folder (default: $EMULATOR_STUDIO_DATA or ~/.cache/emulator-studio)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _data_commands(commands)
    for request in (TrainRequest, SampleRequest, RolloutRequest, SuperresRequest):
        command = commands.add_parser(request.command, help=request.summary)
        add_request_flags(command, request)
        if request.command in JSON_HELP:
            command.add_argument("--json", action="store_true", help=JSON_HELP[request.command])
    _other_commands(commands)
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
    cls = GENERATOR_CONFIGS[args.kind]
    request = request_from_args(DataRequest, args, generator=args.kind, config=config_from_args(args, (cls, "", {})))
    with _ProgressBar("save") as report:
        result = request.run(store=store, callback=report)
    print(f"{result.name} is already in {store.root} (same parameters)" if result.reused
          else f"wrote {result.name} in {store.root}")


def _coarse(args, store: DataStore) -> None:
    result = request_from_args(CoarseRequest, args).run(store=store)
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

        result = request_from_args(TrainRequest, args).run(store=DataStore(args.data_dir), callback=report)
    if result.rank == 0:
        print(f"wrote {', '.join(map(str, result.members or [result.checkpoint]))}")


def _rollout(args) -> None:
    result = request_from_args(RolloutRequest, args).run(store=DataStore(args.data_dir))
    summary, done = result.summary, result.rollout
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"steps {done.steps_done}, blow-up step {done.blowup_step}, {done.seconds:.2f} s, VRMSE by lead: "
              + _by_lead(summary))
        for name, scores in summary.get("per_variable", {}).items():
            print(f"  {name}: {_by_lead(scores)}")
        if "group" in summary:
            print(f"the group's {summary['group']['seeds']} seeds (the lines above: seed 0), VRMSE by lead, mean ± std "
                  "(min–max): " + _spread_by_lead(summary["group"]))


def _spread_by_lead(group: dict) -> str:
    """The first ten leads' VRMSE over a group's seeds, ``lead: mean ± std (min–max)``."""
    spread = group["vrmse"]
    return ", ".join(f"{k}: {mean:.3f} ± {std:.3f} ({low:.3f}–{high:.3f})" for k, mean, std, low, high in
                     list(zip(group["lead_steps"], spread["mean"], spread["std"], spread["min"], spread["max"]))[:10])


def _by_lead(scores: dict) -> str:
    """The first ten leads' VRMSE, ``lead: value``."""
    return ", ".join(f"{k}: {v:.3f}" for k, v in list(zip(scores["lead_steps"], scores["vrmse"]))[:10])


def without_spectra(summary: dict) -> dict:
    """A super-resolution summary without its spectra (arrays; the netCDF output holds them), per variable too."""
    return {key: without_spectra(value) if isinstance(value, dict) else value for key, value in summary.items()
            if key != "spectra"}


def _superres(args) -> None:
    with _ProgressBar("λ step") as bar:
        result = request_from_args(SuperresRequest, args).run(store=DataStore(args.data_dir),
                                                               callback=None if args.json else bar)
    summary = without_spectra(result.summary)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"λ = {summary['lam']} → 0 in {summary['steps']} steps, {summary['seconds']:.2f} s; "
              "mean |log S/S_truth| " + ", ".join(f"{band}: input {summary['input_error'][band]:.3f} → output "
                                                  f"{summary['output_error'][band]:.3f}" for band in BANDS))


def _sample(args) -> None:
    result = request_from_args(SampleRequest, args).run(store=DataStore(args.data_dir))
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
        path = write_animation(rollout, target, args.fps, args.scale, args.variable)
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
