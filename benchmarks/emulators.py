"""Emulators on 64² Kolmogorov flow or the 64² two-layer QG jet: SI forecaster (ODE, SDE), pointwise U-Net alone,
with the spectral-estimate refiner and with SNS (paper 004), SNS as an emulator, the Gaussian-noise baseline, the
EDM diffusion baseline, paper 001's FNO baseline and the papers' DDPM baseline. Trains each (or resumes its run
folder), then prints markdown tables: VRMSE, high-band sRMSE, CRPS and spread–skill by lead time, NFE vs one-step
VRMSE, and long-rollout stability.

    python benchmarks/emulators.py [--system kolmogorov|qg] [--train-steps 2000] [--size tiny] [--runs DIR]
                                   [--long 5000] [--long-members 4] [--edm-levels 4] [--only-long] [--shipped]
                                   [--no-train] [--sns-steps 0]

Kolmogorov: training data `python -m engine data kolmogorov` defaults but 8 × 200 snapshots, seed 0; test data 4
held-out trajectories (seed 1) of 64 snapshots. QG: `python -m engine data qg` defaults (spin-up 3·10⁸ s, saved
every 36000 s) with 12 jets × 200 snapshots, seed 0, split into 8 training and 4 held-out test jets (one spin-up
batch; the jets start from independent random PV). The models emulate the whole state, both layers' PV
(``--variables pv_upper`` the upper layer alone, as before the state had several fields: the one-layer figures); a
state of several fields is scored per field and by the mean over the fields. Both datasets are generated into the
data folder on first use (QG: ≈ 30 min on 2 cores).
``--shipped`` runs the Kolmogorov tables on the shipped checkpoints (the same training data, 2000 steps each)
instead of training; the Gaussian-noise and DDPM baselines are not shipped, so their rows are left out (as with
``--no-train`` for any run folder that is missing).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
from report import main_publishing

from engine.config import (
    ForecastSamplerConfig,
    KolmogorovConfig,
    ModelConfig,
    QGConfig,
    RolloutConfig,
    TrainingConfig,
)
from engine.data.catalog import ensure, install_defaults
from engine.data.fields import load_fields
from engine.data.io import open_dataset, write_dataset
from engine.data.sequences import load_trajectories
from engine.data.store import DataStore
from engine.forecast import load_forecaster
from engine.refine import load_refiner
from engine.rollout import evaluate, initial_conditions, rollout
from engine.spectral import band_masks, held_shells, shell_counts
from engine.tasks import make_task
from engine.training import Trainer

LEADS = (1, 10, 50)
TRAIN = KolmogorovConfig(size=64, trajectories=8, snapshots=200, seed=0)
TEST = KolmogorovConfig(size=64, trajectories=4, snapshots=64, seed=1)
QG_JETS, QG_HELD_OUT = QGConfig(size=64, trajectories=12, snapshots=200, seed=0), 4
TITLES = {"kolmogorov": "64² Kolmogorov", "qg": "64² two-layer QG jet"}
RUNS = ("forecast", "pointwise", "noise_baseline", "diffusion", "sns", "refiner", "fno", "ddpm")  # one folder each
RENOISE_FLOOR = 0.1  # our option `rollout --renoise 0.1`; the papers' refiners renoise to the estimated level alone
LONG_ROWS = ("pointwise", "spectral", "sns", "si-ode", "si-em", "edm")  # the stability table's rows, in order


def split_jets(store: DataStore, name: str, held_out: int) -> tuple[Path, Path]:
    """The last ``held_out`` trajectories of ``name`` as a test set, the rest as a training set (written once)."""
    stem = Path(name).stem
    paths = store.path(f"{stem}-train.nc"), store.path(f"{stem}-test.nc")
    if not all(path.exists() for path in paths):
        with open_dataset(store.path(name)) as ds:
            count = ds.sizes["trajectory"]
            for path, part in zip(paths, (slice(0, count - held_out), slice(count - held_out, count))):
                subset = ds.isel(trajectory=part).load()
                subset.attrs["split"] = f"trajectories {part.start}–{part.stop - 1} of {name}"
                write_dataset(subset, path)
    return paths


def datasets(system: str, store: DataStore) -> tuple[Path, Path]:
    """(training, test) data of ``system``, generated on first use."""
    if system == "qg":
        return split_jets(store, ensure(QG_JETS, store), QG_HELD_OUT)
    return store.path(ensure(TRAIN, store)), store.path(ensure(TEST, store))


def train_all(train_path: Path, runs: Path, steps: int, size: str, variables: list[str] | None) -> dict[str, Path]:
    """Train (or resume) every model on the state of ``variables`` (default: every field); returns their
    checkpoints."""
    tasks = {name: make_task(name, path=train_path, variables=variables) for name in RUNS}
    checkpoints = {}
    for name, task in tasks.items():
        start = time.perf_counter()
        training = TrainingConfig(steps=steps, batch_size=16, log_every=100)
        checkpoints[name] = Trainer(task, ModelConfig(size=size), training,
                                    runs / name).run()
        print(f"trained {name}: {time.perf_counter() - start:.0f} s (0 if resumed complete)", flush=True)
    return checkpoints


SHIPPED = {"forecast": "si-forecaster", "pointwise": "pointwise", "refiner": "refiner", "sns": "sns",
           "diffusion": "diffusion", "fno": "fno"}


def shipped_checkpoints(store: DataStore) -> dict[str, Path]:
    """The shipped Kolmogorov checkpoints the long-rollout table uses (trained on the same data, 2000 steps)."""
    install_defaults(store)
    return {name: store.path(f"runs/shipped-{stem}/checkpoint.pt") for name, stem in SHIPPED.items()}


def run(forecaster, sampler, truth, config, test, refiner=None, callback=None):
    """Roll ``forecaster`` out from the test trajectories ``test`` (``truth`` in physical units) and score it (per
    field and their mean, for a state of several fields)."""
    generator = torch.Generator().manual_seed(sampler.seed)
    result = rollout(lambda x: forecaster.step(x, sampler, generator), initial_conditions(truth, config), config,
                     data_std=test.std, data_mean=test.mean, refiner=refiner, callback=callback)
    return result, evaluate(result, truth, config, forecaster.lead, test.variables)


def crps_over_std(scores: dict, test, lead: int) -> float:
    """CRPS at ``lead`` in units of the data's std: of each field in its own, averaged over the fields."""
    fields = scores.get("per_variable") or {test.variable: scores}
    stds = test.normalization()["std"]
    stds = stds if isinstance(stds, list) else [stds]
    values = [dict(zip(field["lead_steps"], field["crps"])).get(lead, math.nan) / std
              for field, std in zip(fields.values(), stds)]
    return sum(values) / len(values)


def milestones(label: str, every: int = 1000):
    """A rollout callback that tells stderr each time ``label``'s rollout passes another ``every`` steps (a long row
    stopped early still says how far it got)."""
    passed = [0]

    def report(event: dict) -> None:
        if event["step"] // every > passed[0]:
            passed[0] = event["step"] // every
            print(f"{label}: step {event['step']}, {time.strftime('%H:%M:%S')}", file=sys.stderr, flush=True)

    return report


def band_exits(result, data_spectrum: torch.Tensor, n: int, factor: float = 2.0) -> tuple[int | None, float]:
    """First step where the mean |log S_rollout/S_data| over the resolved high band exceeds log(factor) (or None),
    and the fraction of steps within it, over the high-band shells the data holds (``held_shells``); of a state of
    several fields (spectra (step, C, N/2 + 1) against (C, N/2 + 1)), the worst field at each step."""
    held = held_shells(data_spectrum)
    high = band_masks(n)["high"] & (held.all(0) if held.dim() == 2 else held)
    error = (result.spectra[..., high] / data_spectrum[..., high]).log().abs().mean(-1)
    error = error.amax(-1) if error.dim() == 2 else error
    outside = torch.nonzero(error > math.log(factor)).flatten()
    return (int(outside[0]) if outside.numel() else None), float((error <= math.log(factor)).double().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=tuple(TITLES), default="kolmogorov")
    parser.add_argument("--train-steps", type=int, default=2000)
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--runs", default=None,
                        help="run folders, in the data folder (default runs/emulators, runs/emulators-qg)")
    parser.add_argument("--long", type=int, default=5000, help="steps of the stability rollouts (0: no such table)")
    parser.add_argument("--only-long", action="store_true", help="skip the lead-time and NFE tables")
    parser.add_argument("--sns-steps", type=int, default=0,
                        help="SNS refiner: at most this many reverse steps per frame (0: every level, as paper 004)")
    parser.add_argument("--long-rows", nargs="+", choices=LONG_ROWS, default=LONG_ROWS,
                        help="the stability table's rows to run (default: all)")
    parser.add_argument("--long-members", type=int, default=4, help="members of the stability rollouts (default 4)")
    parser.add_argument("--edm-levels", type=int, default=4,
                        help="noise levels of the EDM stability row (2N − 1 network evaluations; default 4)")
    parser.add_argument("--shipped", action="store_true",
                        help="Kolmogorov: the shipped checkpoints instead of training")
    parser.add_argument("--no-train", action="store_true",
                        help="use the checkpoints in the run folders as they are (no training or resuming)")
    parser.add_argument("--variables", nargs="+", default=None,
                        help="the state's fields (default: every field of the data; QG: both layers)")
    args = parser.parse_args()
    if args.sns_steps < 0:
        parser.error(f"--sns-steps must be 0 (every level) or positive, not {args.sns_steps}")
    if args.long < 0:
        parser.error(f"--long must be 0 (no stability table) or positive, not {args.long}")
    if args.long == 0 and args.only_long:
        parser.error("--long 0 skips the stability table and --only-long every other one: choose one")
    if not 1 <= args.long_members <= 64:
        parser.error(f"--long-members must be between 1 and 64, not {args.long_members}")
    if not 1 <= args.edm_levels <= 64:
        parser.error(f"--edm-levels must be between 1 and 64, not {args.edm_levels}")
    if args.no_train and args.shipped:
        parser.error("--no-train reads the run folders; --shipped uses the shipped checkpoints: choose one")
    if args.shipped and args.system != "kolmogorov":
        parser.error("--shipped: only the Kolmogorov emulators are shipped")
    store = DataStore()
    train_path, test_path = datasets(args.system, store)
    default_runs = "runs/emulators" if args.system == "kolmogorov" else f"runs/emulators-{args.system}"
    runs = store.path(args.runs or default_runs)
    if args.shipped:
        checkpoints = shipped_checkpoints(store)
    elif args.no_train:
        checkpoints = {name: runs / name / "checkpoint.pt" for name in RUNS if (runs / name / "checkpoint.pt").exists()}
    else:
        checkpoints = train_all(train_path, runs, args.train_steps, args.size, args.variables)
    test = load_trajectories(test_path, args.variables)
    truth = test.denormalize(test.fields)
    si, pointwise = load_forecaster(checkpoints["forecast"]), load_forecaster(checkpoints["pointwise"])
    refiners = {"spectral": load_refiner(checkpoints["refiner"], torch.device("cpu"), renoise=RENOISE_FLOOR)
                if "refiner" in checkpoints else None,
                "SNS": load_refiner(checkpoints["sns"], torch.device("cpu"), sns_steps=args.sns_steps,
                                    renoise=RENOISE_FLOOR),  # our floor (--renoise 0.1)
                "SNS, paper's levels": load_refiner(checkpoints["sns"], torch.device("cpu"), sns_steps=args.sns_steps)}
    diffusion = load_forecaster(checkpoints["diffusion"])
    if not args.only_long:
        baseline = load_forecaster(checkpoints["noise_baseline"]) if "noise_baseline" in checkpoints else None
        config = RolloutConfig(steps=max(LEADS), members=4, initial_conditions=4)
        sns = load_forecaster(checkpoints["sns"])
        extra = {name: load_forecaster(checkpoints[name]) for name in ("fno", "ddpm") if name in checkpoints}
        lead_tables(si, pointwise, baseline, diffusion, sns, refiners, truth, test, config, args, extra)
    if args.long:
        models = {"pointwise": pointwise, "si": si, "diffusion": diffusion}
        long_table(train_path, truth, test, models, refiners, args)


def lead_tables(si, pointwise, baseline, diffusion, sns, refiners, truth, test, config, args, extra) -> None:
    """The lead-time table, per field where the state has several, and the NFE table; ``extra``: the FNO and DDPM
    baselines where their runs exist."""
    rows = {"SI, PF-ODE (4 steps)": (si, ForecastSamplerConfig(method="pf_ode", steps=4), None),
            "SI-EM (4 steps, ε = 1)": (si, ForecastSamplerConfig(method="si_em", steps=4), None),
            "pointwise": (pointwise, ForecastSamplerConfig(), None),
            "pointwise + spectral refiner (every step)": (pointwise, ForecastSamplerConfig(), refiners["spectral"]),
            "pointwise + SNS, paper's levels (every step)": (pointwise, ForecastSamplerConfig(),
                                                             refiners["SNS, paper's levels"]),
            "pointwise + SNS, renoised to ≥ 10% noise (every step)": (pointwise, ForecastSamplerConfig(),
                                                                      refiners["SNS"]),
            "SNS as emulator (50 DDPM steps)": (sns, ForecastSamplerConfig(steps=50), None),
            "Gaussian-noise baseline (16 steps)": (baseline, ForecastSamplerConfig(method="pf_ode", steps=16), None),
            "EDM diffusion (16 levels, 31 NFE)": (diffusion, ForecastSamplerConfig(steps=16), None),
            "FNO (paper 001's baseline)": (extra.get("fno"), ForecastSamplerConfig(), None),
            "DDPM (50 ancestral steps)": (extra.get("ddpm"), ForecastSamplerConfig(steps=50), None)}
    rows = {label: row for label, row in rows.items()  # not shipped: the noise and DDPM baselines; the refiner
            if row[0] is not None and (row[2] is not None or "refiner" not in label)}  # models one field
    trained = "the shipped checkpoints (2000 steps)" if args.shipped else f"trained {args.train_steps} steps"
    print(f"\n{TITLES[args.system]} ({', '.join(test.variables)}), {args.size} U-Nets, {trained}; 4 test trajectories "
          "× 4 members\n")
    print("| emulator | VRMSE@1 | VRMSE@10 | VRMSE@50 | high-band sRMSE@1 | high-band sRMSE@10 | CRPS@10 / σ | "
          "spread–skill@10 | s per step |")
    print("|---|---|---|---|---|---|---|---|---|")
    per_field = []
    for label, (model, sampler, ref) in rows.items():
        config.refine_every = 1 if ref is not None else 0
        result, scores = run(model, sampler, truth, config, test, ref)
        v = dict(zip(scores["lead_steps"], scores["vrmse"]))
        high = dict(zip(scores["lead_steps"], scores["band_errors"]["high"]))
        ratio = dict(zip(scores["lead_steps"], scores["spread_skill"]))
        print(f"| {label} | {v.get(1, math.nan):.3f} | {v.get(10, math.nan):.3f} | {v.get(50, math.nan):.3f} | "
              f"{high.get(1, math.nan):.3f} | {high.get(10, math.nan):.3f} | {crps_over_std(scores, test, 10):.3f} | "
              f"{ratio.get(10) if ratio.get(10) is not None else math.nan:.2f} | "
              f"{result.seconds / max(result.steps_done, 1):.4f} |", flush=True)
        per_field.append((label, scores.get("per_variable", {})))
    if test.channels > 1:
        field_table(per_field, test.variables)
    nfe_table(si, baseline, diffusion, truth, test)


def field_table(rows: list[tuple[str, dict]], variables: tuple[str, ...]) -> None:
    """VRMSE at leads 1, 10 and 50 of each field of the state, per emulator."""
    print("\n| emulator | " + " | ".join(f"{name} VRMSE@{lead}" for name in variables for lead in LEADS) + " |")
    print("|---|" + "---|" * (len(variables) * len(LEADS)))
    for label, fields in rows:
        cells = [dict(zip(fields[name]["lead_steps"], fields[name]["vrmse"])).get(lead, math.nan)
                 for name in variables for lead in LEADS]
        print(f"| {label} | " + " | ".join(f"{cell:.3f}" for cell in cells) + " |", flush=True)


def one_step_vrmse(model, sampler, truth, test) -> str:
    """VRMSE at lead 1 of 4 × 4 one-step forecasts, or the blow-up that stopped them."""
    result, scores = run(model, sampler, truth, RolloutConfig(steps=1, members=4, initial_conditions=4), test)
    reason = (result.reason or "").replace("|", r"\|")  # a table cell: its pipes escaped
    return f"{scores['vrmse'][1]:.3f}" if len(scores["vrmse"]) > 1 else f"blow-up ({reason})"


def nfe_table(si, baseline, diffusion, truth, test) -> None:
    print("\n| NFE per forecast | SI (ODE) VRMSE@1 | Gaussian-noise baseline VRMSE@1 | EDM diffusion VRMSE@1 (levels) |"
          "\n|---|---|---|---|")
    for nfe in (1, 2, 4, 8, 16, 32):
        sampler = ForecastSamplerConfig(method="pf_ode", steps=nfe)
        levels = (nfe + 1) // 2  # 2N − 1 evaluations
        si_score = one_step_vrmse(si, sampler, truth, test)
        base_score = one_step_vrmse(baseline, sampler, truth, test) if baseline is not None else "not shipped"
        edm_score = one_step_vrmse(diffusion, ForecastSamplerConfig(steps=levels), truth, test)
        print(f"| {nfe} | {si_score} | {base_score} | {edm_score} ({levels}) |", flush=True)


def data_spectra(train_path: Path, variables: tuple[str, ...]) -> torch.Tensor:
    """The training data's shell-summed spectrum of each field of the state: (N/2 + 1,), or (C, N/2 + 1)."""
    fields = [load_fields(train_path, name) for name in variables]
    spectra = [data.spectrum * shell_counts(data.n) for data in fields]  # shell mean → shell sum
    return (spectra[0] if len(spectra) == 1 else torch.stack(spectra)).double()


def long_table(train_path, truth, test, models, refiners, args) -> None:
    data_spectrum = data_spectra(train_path, test.variables)
    print(f"\n| long rollout ({args.long} steps, {args.long_members} members) | blow-up step | high band first off "
          f"by ×2 at step | steps within ×2 | seconds |\n|---|---|---|---|---|")
    long = RolloutConfig(steps=args.long, members=args.long_members, initial_conditions=1, save_every=args.long)
    pointwise = models["pointwise"]
    rows = (("pointwise", pointwise, ForecastSamplerConfig(), None, 0),
            ("pointwise + spectral refiner (every 10 steps)", pointwise, ForecastSamplerConfig(), refiners["spectral"],
             10),
            ("pointwise + SNS, renoised to ≥ 10% noise (every 10 steps)", pointwise, ForecastSamplerConfig(),
             refiners["SNS"], 10),
            ("SI, PF-ODE (2 steps)", models["si"], ForecastSamplerConfig(method="pf_ode", steps=2), None, 0),
            ("SI-EM (2 steps)", models["si"], ForecastSamplerConfig(method="si_em", steps=2), None, 0),
            (f"EDM diffusion ({args.edm_levels} levels, {2 * args.edm_levels - 1} NFE)", models["diffusion"],
             ForecastSamplerConfig(steps=args.edm_levels), None, 0))
    for key, (label, model, sampler, ref, every) in zip(LONG_ROWS, rows):
        if key not in args.long_rows:
            continue
        long.refine_every = every
        if every and ref is None:  # a refiner whose run folder is missing (--no-train)
            continue
        result, _ = run(model, sampler, truth, long, test, ref, callback=milestones(label))
        first, within = band_exits(result, data_spectrum, test.n)
        print(f"| {label} | {result.blowup_step or 'none'} | {first} | {100 * within:.0f}% | {result.seconds:.0f} |",
              flush=True)


if __name__ == "__main__":
    main_publishing("emulators", main)
