"""``claims``: each seed paper's headline claims run at a CPU size, one row per claim, holding or not.

Every row quotes the paper: where the claim is made (``source``), the rule it is judged by (``criterion``: written
from what the paper claims, before our number was seen) and the paper's own figure (``paper_figure``, or the words
"qualitative in the paper" where it gives none); then what we measured (``ours``) and whether the rule holds on it.
A claim that does not hold is listed with the likely reason, never left out or tuned away. The analytic claims
(000 on Gaussian fields, 003) use exact drifts; the emulator claims (001, 002, 004) use the shipped CPU-trained
checkpoints on the built-in test sets. docs/science.md has the methods; docs/claims.md is written from ``--json``.
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, fields
from typing import Callable

import numpy as np
import torch

from engine.cluster import map_parts
from engine.config import ForecastSamplerConfig, NoiseConfig, PDDSamplerConfig, RolloutConfig, ScheduleConfig
from engine.curie_weiss import CurieWeiss, generate_spins, recovered_features, spin_dimension_sweep, spin_statistics
from engine.data.catalog import install_defaults
from engine.data.grf import grf_power
from engine.data.sequences import load_sequences, load_trajectories
from engine.data.store import DataStore
from engine.interpolants import GaussianModel
from engine.mixture import (
    MIXTURE_SCHEDULES,
    TwoModeMixture,
    dimension_sweep,
    fewest_steps,
    generate_mixture,
    mode_statistics,
    recovered,
)
from engine.noise import noise_spectrum
from engine.oracle import exact_spectral_errors
from engine.pdd import fixed_lambda_spectra, load_pdd
from engine.pipelines.rollout import prepare, roll_initial_condition, run_rollout
from engine.pipelines.sample import errors_by_steps, steps_to_reach
from engine.pipelines.superres import run_superres
from engine.samplers import uniform_grid
from engine.schedules import make_schedule, spectral_ratio_at_highest_wavenumber
from engine.spectral import band_log_errors, band_masks, held_shells, shell_counts, shell_spectra, shell_sum

# paper 003's split, per schedule (high-level feature recovered, low-level feature recovered), on both exact models
PAPER_003_SPLIT = {"vp": (False, True), "vp_dilated": (True, True), "ve": (True, False), "ve_dilated": (True, True)}
SI, POINTWISE, REFINER, SNS, PDD, PDD_L96, DIFFUSION, FNO = (
    f"runs/shipped-{name}/checkpoint.pt"
    for name in ("si-forecaster", "pointwise", "refiner", "sns", "pdd", "pdd-l96", "diffusion", "fno"))
QG_POINTWISE, QG_SNS = (f"runs/shipped-qg-{name}/checkpoint.pt" for name in ("pointwise", "sns"))
ALLEN_CAHN = "runs/shipped-ac-{}-{}/checkpoint.pt"  # noise, schedule
QUALITATIVE = "qualitative in the paper"
TARGET_ERROR = 0.15  # the spectral error (mean |log S/S_d|) the step counts of paper 000's claims are read at


@dataclass
class Claim:
    """One row of the ledger: the paper's claim as the paper makes it, and what we measured."""

    paper: str
    claim: str
    source: str
    criterion: str
    paper_figure: str
    ours: str
    holds: bool

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ClaimSpec:
    """A claim as the ledger states it before measuring (every ``Claim`` field but ``ours`` and ``holds``), and the
    measurement that decides it: ``measure(store, quick) -> (ours, holds)``."""

    paper: str
    claim: str
    source: str
    criterion: str
    paper_figure: str
    measure: Callable[[DataStore, bool], tuple[str, bool]]

    def stated(self) -> dict:
        """The row's columns that do not depend on the measurement."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "measure"}


def _grf_errors(noise: str, schedule: str, steps: int, n: int = 128) -> float:
    """Mean |log S_gen/S_data| after ``steps`` Euler steps on the exact drift for GRFs with s = 3 (closed form)."""
    data = grf_power(n, 3.0)
    noise_power = noise_spectrum(noise, n, shell_sum(data) / shell_counts(n), exponent=4.0)
    r = spectral_ratio_at_highest_wavenumber(data, noise_power)
    model = GaussianModel(noise_power, data, make_schedule(schedule, dimension=n * n, r=r))
    return exact_spectral_errors(model, uniform_grid(steps))["spectral_error"]


def _grf_steps(noise: str, schedule: str, n: int = 128) -> int | None:
    """The fewest Euler steps on the exact drift that bring GRFs (s = 3) within ``TARGET_ERROR`` (None: not in 4096)."""
    return fewest_steps(lambda steps: _grf_errors(noise, schedule, steps, n) <= TARGET_ERROR)


def _steps(count: int | None) -> str:
    return "> 4096" if count is None else str(count)


def matched_noise(store: DataStore, quick: bool) -> tuple[str, bool]:
    matched, white = _grf_steps("matched", "linear"), _grf_steps("white", "linear")
    ours = (f"128² GRF (s = 3), exact drift, linear schedule, Euler steps to reach {TARGET_ERROR}: matched "
            f"{_steps(matched)}, white {_steps(white)} (at 32 steps: matched {_grf_errors('matched', 'linear', 32):.3f}"
            f", white {_grf_errors('white', 'linear', 32):.2f})")
    return ours, matched is not None and (white is None or white >= 4 * matched)


def designed_schedule(store: DataStore, quick: bool) -> tuple[str, bool]:
    designed, linear = _grf_errors("white", "designed", 20), _grf_errors("white", "linear", 40)
    return (f"128² GRF, white noise, exact drift: designed schedule at 20 Euler steps {designed:.2f}, linear at 40 "
            f"{linear:.2f}", designed < linear)


def resolution(store: DataStore, quick: bool) -> tuple[str, bool]:
    sizes = (32, 64, 128)
    matched = [_grf_errors("matched", "linear", 32, n) for n in sizes]
    white = [_grf_errors("white", "linear", 32, n) for n in sizes]
    ours = (f"GRF (s = 3), exact drift, 32 Euler steps at {', '.join(f'{n}²' for n in sizes)}: matched "
            f"{' / '.join(f'{e:.3f}' for e in matched)}, white {' / '.join(f'{e:.2f}' for e in white)}")
    steady = max(matched) <= 1.25 * min(matched)
    return ours, steady and white[0] < white[1] < white[2]


# paper 000's Allen–Cahn comparison: label → (noise, schedule trained on, schedule sampled with); the last one samples
# the white/linear drift on the designed schedule, as [000]'s notebooks do (ScheduleTransfer)
ALLEN_CAHN_DRIFTS = {"matched/linear": ("matched", "linear", "linear"),
                     "matched/designed": ("matched", "designed", "designed"),
                     "white/linear": ("white", "linear", "linear"), "white/designed": ("white", "designed", "designed"),
                     "white/linear→designed": ("white", "linear", "designed")}
def allen_cahn_steps(store: DataStore, quick: bool) -> tuple[dict, dict, float]:
    """Spectral error by Euler steps of the shipped Allen–Cahn drifts on the built-in set, the steps each needs to
    reach ε* = max(0.15, 1.5 × the lowest error of any), and ε* (measured once per process, folder and size)."""
    return _allen_cahn_measured(str(store.root), quick)


@functools.cache
def _allen_cahn_measured(root: str, quick: bool) -> tuple[dict, dict, float]:
    store = DataStore(root)
    data = install_defaults(store)[5]
    steps = (8, 32, 64) if quick else (2, 4, 8, 16, 32, 64)
    curves = {label: errors_by_steps(store=store, data=data, checkpoint=ALLEN_CAHN.format(noise, trained),
                                     noise=NoiseConfig(kind=noise), schedule=ScheduleConfig(kind=sampled),
                                     steps=steps, count=16 if quick else 128)
              for label, (noise, trained, sampled) in ALLEN_CAHN_DRIFTS.items()}
    threshold = max(0.15, 1.5 * min(min(curve.values()) for curve in curves.values()))
    return curves, {label: steps_to_reach(curve, threshold) for label, curve in curves.items()}, threshold


def _allen_cahn_verdict(store: DataStore, quick: bool, labels: tuple[str, ...]) -> tuple[str, dict]:
    """The row's text for ``labels`` beside white/linear, and the steps each needs (not reached: twice the most
    tried)."""
    curves, needed, threshold = allen_cahn_steps(store, quick)
    tried = max(next(iter(curves.values())))
    shown = ", ".join(f"{label} {f'> {tried}' if needed[label] is None else needed[label]} (ε = "
                      f"{curves[label][tried]:.2f} at {tried})" for label in ("white/linear", *labels))
    text = (f"64² stochastic Allen–Cahn (kurtosis 1.5), shipped CPU-trained drifts, Euler steps to reach ε* = "
            f"{threshold:.2f}: {shown}")
    return text, {label: 2 * tried if steps is None else steps for label, steps in needed.items()}


def allen_cahn_noise(store: DataStore, quick: bool) -> tuple[str, bool]:
    ours, cost = _allen_cahn_verdict(store, quick, ("matched/linear", "matched/designed"))
    holds = cost["white/linear"] >= 2 * cost["matched/linear"]
    reason = "" if holds else ("; likely reason: trained with the papers' plain L2 for 1500 CPU steps, the matched "
                               "drift levels off near ε* (the fine modes are a tiny part of the pixel L2) where the "
                               "exact Gaussian drift of this spectrum keeps falling; the same drifts trained with our "
                               "--spectral-weight 0.25 reached ε* in 16 steps against white noise's 64 "
                               "(docs/science.md §1)")
    return ours + reason, holds


def allen_cahn_schedule(store: DataStore, quick: bool) -> tuple[str, bool]:
    ours, cost = _allen_cahn_verdict(store, quick, ("white/designed", "white/linear→designed"))
    holds = cost["white/linear"] >= 2 * min(cost["white/designed"], cost["white/linear→designed"])
    reason = "" if holds else ("; likely reason: on this field the designed schedule restores the high band and "
                               "loses the low one, with the exact Gaussian drift too and with the paper's RK4, so not "
                               "the training, the network or its seed (docs/science.md §1)")
    return ours + reason, holds


def _rollout_scores(store: DataStore, checkpoint: str, sampler: ForecastSamplerConfig, steps: int,
                    refiner: str | None = None, refine_every: int = 0, members: int = 2,
                    refine_steps: int = 0) -> dict:
    config = RolloutConfig(steps=steps, members=members, initial_conditions=2, refine_every=refine_every,
                           refine_steps=refine_steps, device="cpu")
    data = install_defaults(store)[0]
    return run_rollout(store=store, checkpoint=checkpoint, data=data, config=config, sampler=sampler,
                       refiner=refiner).summary


def ode_versus_sde(store: DataStore, quick: bool) -> tuple[str, bool]:
    steps = 10 if quick else 30
    scores = {method: _rollout_scores(store, SI, ForecastSamplerConfig(method=method, steps=4), steps)
              for method in ("pf_ode", "si_e", "si_em")}
    vrmse = {method: s["vrmse"][-1] for method, s in scores.items()}
    high = {method: s["band_errors"]["high"][-1] for method, s in scores.items()}
    deterministic = min(vrmse["pf_ode"], vrmse["si_e"])
    ours = (f"shipped SI forecaster, 4 sampler steps, lead {steps}: VRMSE PF-ODE {vrmse['pf_ode']:.3f}, SI-E "
            f"{vrmse['si_e']:.3f}, SI-EM {vrmse['si_em']:.3f}; high-band sRMSE PF-ODE {high['pf_ode']:.3f}, SI-E "
            f"{high['si_e']:.3f}, SI-EM {high['si_em']:.3f}")
    return ours, deterministic < vrmse["si_em"] and high["si_em"] < min(high["pf_ode"], high["si_e"])


def few_steps(store: DataStore, quick: bool) -> tuple[str, bool]:
    one = {nfe: _rollout_scores(store, SI, ForecastSamplerConfig(method="si_e", steps=nfe), 1)["vrmse"][1]
           for nfe in (2, 16)}
    return (f"shipped SI forecaster (SI-E), lead 1: VRMSE {one[2]:.3f} with 2 steps, {one[16]:.3f} with 16",
            one[2] <= 1.1 * one[16])


def si_against_fno(store: DataStore, quick: bool) -> tuple[str, bool]:
    lead = 5 if quick else 10
    si = {method: _rollout_scores(store, SI, ForecastSamplerConfig(method=method, steps=2), lead)["vrmse"]
          for method in ("si_e", "si_em")}
    fno = _rollout_scores(store, FNO, ForecastSamplerConfig(), lead)["vrmse"]
    best = min(si, key=lambda method: si[method][1])
    ours = (f"shipped checkpoints (tiny, 2000 steps each, the same data), Kolmogorov: VRMSE at lead 1 / {lead}: SI-E "
            f"{si['si_e'][1]:.3f} / {si['si_e'][lead]:.3f}, SI-EM {si['si_em'][1]:.3f} / {si['si_em'][lead]:.3f} (2 "
            f"steps); FNO {fno[1]:.3f} / {fno[lead]:.3f}")
    holds = si[best][1] < fno[1]
    later = min(si, key=lambda method: si[method][lead])
    ahead = f"; by lead {lead} {later.upper().replace('_', '-')} is ahead" if si[later][lead] < fno[lead] else ""
    reason = "" if holds else ("; likely reason: at these sizes the FNO (5× the tiny U-Net's parameters, trained on "
                               "the same steps) "
                               f"is the better one-step map{ahead}; the paper's models are far larger and trained "
                               "far longer")
    return ours + reason, holds


def si_against_edm(store: DataStore, quick: bool) -> tuple[str, bool]:
    si = {nfe: _rollout_scores(store, SI, ForecastSamplerConfig(method="pf_ode", steps=nfe), 1)["vrmse"][1]
          for nfe in (1, 2)}
    edm = _rollout_scores(store, DIFFUSION, ForecastSamplerConfig(steps=16), 1)["vrmse"][1]
    return (f"shipped checkpoints, Kolmogorov, lead 1: SI (PF-ODE) VRMSE {si[1]:.3f} at 1 evaluation, {si[2]:.3f} at "
            f"2; EDM diffusion {edm:.3f} at 16 levels (31 evaluations)", min(si.values()) <= edm)


def calibration(store: DataStore, quick: bool) -> tuple[str, bool]:
    lead = 5 if quick else 10
    ratios = {method: _rollout_scores(store, SI, ForecastSamplerConfig(method=method, steps=4), lead,
                                      members=4)["spread_skill"][-1] for method in ("pf_ode", "si_em")}
    ours = (f"shipped SI forecaster, 2 × 4 members, 4 sampler steps, spread–skill at lead {lead}: PF-ODE "
            f"{ratios['pf_ode']:.2f}, SI-EM {ratios['si_em']:.2f} (1 is calibrated)")
    return ours, abs(math.log(max(ratios["si_em"], 1e-12))) < abs(math.log(max(ratios["pf_ode"], 1e-12)))


def super_resolution(store: DataStore, quick: bool) -> tuple[str, bool]:
    data = install_defaults(store)[3]
    errors = {}
    for variance in ("scalar", "spectral"):  # the paper's path variance, and our per-mode option
        sampler = PDDSamplerConfig(lam=0.1, steps=40, variance=variance)
        summary = run_superres(store=store, checkpoint=PDD, data=data, sampler=sampler, sequences=1 if quick else 4,
                               device="cpu").summary
        errors[variance] = summary["input_error"]["high"], summary["output_error"]["high"]
    (before, after), option = errors["scalar"], errors["spectral"][1]
    holds = after <= 0.5 * before
    reason = "" if holds else ("; likely reason: the paper's mean_k Q_k(λ) path variance over-weights the "
                               "predictor's error on the fine modes, whose own Q_k(λ) is far smaller")
    return (f"shipped PDD predictor, λ = 0.1 → 0 in 40 uniform ETD1 steps (the paper's sampler), {summary['sequences']}"
            f" × 8 frames: high-band mean |log S/S_truth| {before:.2f} → {after:.2f}{reason}; with our per-mode path "
            f"variance (--variance spectral) → {option:.2f}", holds)


def fixed_lambda(store: DataStore, quick: bool) -> tuple[str, bool]:
    """The shipped PDD predictor simulating at λ = 0.2 against the test data coarse-grained at 0.2."""
    steps, lam = (10, 0.2) if quick else (40, 0.2)
    data = install_defaults(store)[3]
    config = RolloutConfig(steps=steps, members=2, initial_conditions=1, lam=lam, device="cpu")
    sampler = ForecastSamplerConfig(method="si_em")
    prepared = prepare(store=store, checkpoint=PDD, data=data, config=config, sampler=sampler, refiner=None,
                       variables=None)
    truth = prepared.emulator.truth[:1, : config.start + steps + 1]
    reference = shell_spectra(truth).reshape(-1, truth.shape[-1] // 2 + 1).mean(0)
    result = roll_initial_condition(prepared, 0).rollout  # the one initial condition, as run_rollout rolls it
    held = held_shells(reference)
    held[0] = False
    error = float((result.spectra[-1][held] / reference[held]).log().abs().mean())
    return (f"shipped PDD predictor simulating at λ = {lam} for {result.steps_done} steps (blow-up: "
            f"{result.blowup_step or 'none'}): mean |log S/S_truth at λ| over the held shells {error:.2f} "
            f"(×{math.exp(error):.2f})", result.blowup_step is None and error <= math.log(2))


def _lorenz96_band_errors(model, physics: torch.Tensor, lam: float, members: int, steps: int) -> dict | None:
    """Each band's mean |log PSD/PSD_physics at λ| of ``members`` fixed-λ simulations (noise on); None if one
    diverged."""
    spectra = fixed_lambda_spectra(model, physics, lam=lam, members=members, steps=steps)
    return None if spectra.psd is None else band_log_errors(spectra.psd, spectra.reference)


def lorenz96_spectra(store: DataStore, quick: bool) -> tuple[str, bool]:
    """The shipped Lorenz-96 PDD predictor simulating the slow variables at λ = 0 and 0.2 (4 s in all on a CPU)."""
    members, steps = 16, 2000
    model = load_pdd(store.path(PDD_L96))
    test = load_sequences(store.path(install_defaults(store)[2]))
    physics = test.denormalize(test.fields)  # (trajectory, time, K)
    errors = {lam: _lorenz96_band_errors(model, physics, lam, members, steps) for lam in (0.0, 0.2)}
    words = "; ".join(f"λ = {lam}: " + ("diverged" if bands is None else ", ".join(
        f"{band} {bands[band]:.2f}" for band in ("low", "mid", "high"))) for lam, bands in errors.items())
    holds = all(bands is not None and max(bands[band] for band in ("low", "mid", "high")) <= math.log(2)
                for bands in errors.values())
    return (f"shipped Lorenz-96 PDD predictor (tiny, 3000 CPU steps), {members} simulations × {steps} steps of the 32 "
            f"slow variables against the test trajectories coarse-grained at λ, mean |log PSD ratio| per band: "
            f"{words}", holds)


def mixture_features(store: DataStore, quick: bool) -> tuple[str, bool]:
    mixture = TwoModeMixture(10_000, 0.8, 0.5)
    verdicts = {kind: recovered(mixture, *mode_statistics(generate_mixture(mixture, kind, 64, 2000)))
                for kind in MIXTURE_SCHEDULES}
    words = "; ".join(f"{kind}: p {'✓' if p else '✗'} σ² {'✓' if s else '✗'}" for kind, (p, s) in verdicts.items())
    return f"d = 10⁴, 64 Euler steps, k = 3 (✓: within 0.04 of p, 15% of σ²): {words}", verdicts == PAPER_003_SPLIT


def _complexity(dimensions: tuple[int, ...], steps: dict[str, list[int | None]]) -> tuple[str, bool]:
    """Each schedule's log–log slope of steps vs d (with the steps), and whether uniform grids grow like √d
    (slope > 0.35) while dilated ones stay flat (< 0.15); a search that failed counts as 4096 steps."""
    slopes = {kind: float(np.polyfit(np.log(dimensions), np.log([s or 4096 for s in values]), 1)[0])
              for kind, values in steps.items()}
    words = ", ".join(f"{kind} {slope:.2f} ({'/'.join(str(s) for s in steps[kind])})" for kind, slope in slopes.items())
    return (f"log–log slope of the steps that recover both features vs d = {', '.join(map(str, dimensions))} "
            f"(steps): {words}",
            min(slopes["vp"], slopes["ve"]) > 0.35 and max(slopes["vp_dilated"], slopes["ve_dilated"]) < 0.15)


def complexity_in_d(store: DataStore, quick: bool) -> tuple[str, bool]:
    dimensions = (100, 1000, 10_000) if quick else (100, 1000, 10_000, 100_000)
    ours, holds = _complexity(dimensions, dimension_sweep(dimensions=dimensions, count=500 if quick else 2000))
    return f"two-mode mixture: {ours}", holds


def million_dimensions(store: DataStore, quick: bool) -> tuple[str, bool]:
    steps = dimension_sweep(dimensions=(10**6,), count=500 if quick else 2000)
    words = ", ".join(f"{kind} {_steps(values[0])}" for kind, values in steps.items())
    dilated = max(steps["vp_dilated"][0] or 4097, steps["ve_dilated"][0] or 4097)
    uniform = min(steps["vp"][0] or 4097, steps["ve"][0] or 4097)
    return (f"two-mode mixture (reduced form), d = 10⁶, k = 3, Euler steps that recover both features: {words}",
            dilated <= 64 and uniform >= 10 * dilated)


def spin_features(store: DataStore, quick: bool) -> tuple[str, bool]:
    model = CurieWeiss(10_000, 0.8, 2.0)
    verdicts = {kind: recovered_features(model, spin_statistics(generate_spins(model, kind, 32, 200).x))
                for kind in MIXTURE_SCHEDULES}
    words = "; ".join(f"{kind}: phase {'✓' if p else '✗'} spins {'✓' if s else '✗'}"
                      for kind, (p, s) in verdicts.items())
    return (f"Curie–Weiss, J = 2, p = 0.8, d = 10⁴, 32 Euler steps, 200 samples, k = 3 (✓: p̂ within 0.085 (3 "
            f"standard errors), |M|/d within 0.02 of m and ⟨x²⟩ within 5% of 1): {words}", verdicts == PAPER_003_SPLIT)


def spin_complexity_in_d(store: DataStore, quick: bool) -> tuple[str, bool]:
    # below d ≈ 10³ uniform VP is held back by the spins (≈ 15 steps at any d), not the phase: fit where the phase
    # binds (benchmarks/noise_schedules.py --model curie-weiss prints d = 10² … 10⁴); O(samples · d) per step keeps
    # the full run at the quick sizes too
    dimensions = (1000, 3000, 10_000)
    ours, holds = _complexity(dimensions, spin_dimension_sweep(dimensions=dimensions, count=200))
    return f"Curie–Weiss (phase and spins): {ours}", holds


def _share_in_band(store: DataStore, refiner: str | None, steps: int,
                   refine_steps: int = 0) -> tuple[float, int | None]:
    """Fraction of rollout steps whose high-band mean |log S/S_data| stays within log 2 (shells the data holds),
    and the first step outside (None if it never leaves)."""
    config = RolloutConfig(steps=steps, members=2, initial_conditions=1, save_every=steps,
                           refine_every=10 if refiner else 0, refine_steps=refine_steps, device="cpu")
    data = install_defaults(store)[0]
    result = run_rollout(store=store, checkpoint=POINTWISE, data=data, config=config,
                         sampler=ForecastSamplerConfig(), refiner=refiner).rollout
    truth = load_trajectories(store.path(data))
    n = truth.n
    reference = shell_spectra(truth.denormalize(truth.fields)).reshape(-1, n // 2 + 1).mean(0)  # the data's
    high = band_masks(n)["high"] & held_shells(reference)
    error = (result.spectra[:, high] / reference[high]).log().abs().mean(-1)
    outside = torch.nonzero(error > math.log(2)).flatten()
    return float((error <= math.log(2)).double().mean()), (int(outside[0]) if outside.numel() else None)


def refinement(store: DataStore, quick: bool) -> tuple[str, bool]:
    steps = 200 if quick else 2000
    sns_steps = 10 if quick else 20  # strided reverse steps per frame (one per level from level ≈ 200 is ~10× slower)
    plain, exit_plain = _share_in_band(store, None, steps)
    spectral, exit_spectral = _share_in_band(store, REFINER, steps)
    sns, exit_sns = _share_in_band(store, SNS, steps, sns_steps)
    holds = sns > plain + 0.1
    reason = "" if holds else ("; likely reason: the surrogate's first step loses fine-scale energy and SNS's level "
                               "estimator reads such a smooth state as clean (levels ≤ 4 of 1000), so at the levels it "
                               "estimates it barely changes it; training longer or another seed does not move the "
                               "first step near the band (benchmarks/sns_band.py, docs/science.md §5)")
    return (f"shipped pointwise surrogate, {steps} steps, share of steps with the high band within ×2 of the data's: "
            f"{plain:.2f} alone (first out at step {exit_plain}); refined every 10 steps: {spectral:.2f} with the "
            f"spectral refiner (first out at step {exit_spectral}), {sns:.2f} with SNS ({sns_steps} reverse steps per "
            f"frame, at the levels it estimates, as paper 004; first out at step {exit_sns}){reason}", holds)


def _temporal_misfit(summary: dict) -> tuple[float, float]:
    """How far a rollout's C(τ) and R(t) are from the truth's: mean |ΔC| over the lags, mean |log R/R_truth|."""
    correlation = summary["correlation"]
    lags = min(len(correlation["emulator"]), len(correlation["truth"]))
    gap = float(np.mean(np.abs(np.subtract(correlation["emulator"][:lags], correlation["truth"][:lags]))))
    rate = summary["rate"]
    steps = min(len(rate["emulator"]), len(rate["truth"]))
    ratio = np.log(np.maximum(rate["emulator"][:steps], 1e-300) / np.maximum(rate["truth"][:steps], 1e-300))
    return gap, float(np.mean(np.abs(ratio)))


def temporal_consistency(store: DataStore, quick: bool) -> tuple[str, bool]:
    steps = 40 if quick else 200
    sampler = ForecastSamplerConfig()
    misfit = {name: _temporal_misfit(_rollout_scores(store, POINTWISE, sampler, steps, refiner=refiner,
                                                     refine_every=10, refine_steps=10))
              for name, refiner in (("SNS", SNS), ("spectral Thermalizer", REFINER))}
    words = "; ".join(f"{name}: mean |ΔC(τ)| {gap:.3f}, mean |log R/R_truth| {rate:.2f}"
                      for name, (gap, rate) in misfit.items())
    sns, thermalizer = misfit["SNS"], misfit["spectral Thermalizer"]
    holds = sns[0] < thermalizer[0] and sns[1] < thermalizer[1]
    reason = "" if holds else ("; likely reason: refined once every 10 steps, either refiner leaves the step-to-step "
                               "increments, and so R(t), to the surrogate (tiny CPU-trained models)")
    return (f"shipped pointwise surrogate refined every 10 steps (10 reverse steps), {steps} steps, 2 × 2 members: "
            f"{words}{reason}", holds)


def _qg_blowup(store: DataStore, refiner: str | None, steps: int) -> int | None:
    """The step at which the shipped two-layer QG pointwise surrogate (refined every 10 steps by ``refiner``, with
    10 reverse steps from the levels it estimates, when given) blows up in ``steps`` steps, 2 members (None: never)."""
    config = RolloutConfig(steps=steps, members=2, initial_conditions=1, save_every=steps,
                           refine_every=10 if refiner else 0, refine_steps=10 if refiner else 0, device="cpu")
    return run_rollout(store=store, checkpoint=QG_POINTWISE, data=install_defaults(store)[4], config=config,
                       sampler=ForecastSamplerConfig(), refiner=refiner).rollout.blowup_step


def qg_stability(store: DataStore, quick: bool) -> tuple[str, bool]:
    steps = 2000 if quick else 10_000  # 30 s / 160 s of the SNS-refined rollout on 2 cores
    plain, refined = _qg_blowup(store, None, steps), _qg_blowup(store, QG_SNS, steps)
    holds = refined is None and plain is not None
    reason = "" if holds else "; likely reason: the tiny CPU-trained models (800 steps)"
    return (f"shipped two-layer QG emulators (pv_upper and pv_lower, 800 CPU steps each), {steps} steps, 2 members: "
            f"the pointwise surrogate blows up (above 20 data std) at step {plain or 'none'}; refined every 10 steps "
            f"by SNS (paper 004's: the levels it estimates, no floor; 10 reverse steps) at step {refined or 'none'}"
            f"{reason}; the diffusion baseline is not run here (10⁴ steps of EDM at 16 levels took 1.7 h on one "
            "layer and stayed bounded: docs/benchmarks.md)", holds)


CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec("000", "matched noise reaches a given spectral error in far fewer steps than white noise (Gaussian "
              "fields)", "[000] the noise must not be smoother than the data; its GRF experiment (128², s = 3) and the "
              "reference repository's saved comparisons",
              f"with matched noise the exact drift reaches a mean |log S/S_d| of {TARGET_ERROR} in at most a quarter "
              "of the Euler steps white noise needs (the saved runs pair matched noise at 5 steps with white at 20)",
              f"{QUALITATIVE} (the saved runs: matched noise at 5 RK4 steps, white noise at 20/40/80)", matched_noise),
    ClaimSpec("000", "with white noise the designed schedule needs fewer steps than the linear one",
              "[000] the scale-adaptive (designed) schedule; the reference repository's saved comparisons",
              "with white noise and the exact drift, the designed schedule at 20 Euler steps is closer to the data "
              "than the linear schedule at 40",
              f"{QUALITATIVE} (the saved runs: the designed schedule at 20 RK4 steps beside white noise at 20/40/80)",
              designed_schedule),
    ClaimSpec("000", "matched noise also cuts the steps on non-Gaussian data", "[000] Allen–Cahn experiment (their "
              "saved runs, 1-D, 32–128 points)", "the white-noise linear drift needs at least twice the Euler steps of "
              "the matched-noise one to reach ε* (trained drifts on our 64² stochastic Allen–Cahn)",
              f"{QUALITATIVE} (the saved runs: matched noise at 5 RK4 steps against white noise at 10/20/40)",
              allen_cahn_noise),
    ClaimSpec("000", "with white noise the designed schedule also cuts the steps on non-Gaussian data",
              "[000] Allen–Cahn experiment (their saved runs)", "the white-noise linear drift needs at least twice the "
              "Euler steps of the designed schedule (trained on it, or the linear drift moved onto it) to reach ε*",
              f"{QUALITATIVE} (the saved runs: the designed schedule at 10 RK4 steps against the linear one at "
              "10/20/40)", allen_cahn_schedule),
    ClaimSpec("000", "with matched noise the error does not depend on the resolution; with white noise it does",
              "[000] the noise must not be smoother than the data, or the drift is stiff and the error depends on the "
              "resolution", "at 32 Euler steps of the exact drift on GRFs (s = 3), matched noise's spectral error "
              "varies by at most 25% over 32², 64², 128² while white noise's grows at each refinement",
              QUALITATIVE, resolution),
    ClaimSpec("001", "ODE sampling gives the lower VRMSE, SDE sampling the better high-band spectrum",
              "[001] Kolmogorov flow: the sampler comparison (SI-E, SI-EM)", "at lead 30 (10 in --quick) a "
              "deterministic sampler (PF-ODE or SI-E) has a lower VRMSE than SI-EM, and SI-EM a lower high-band "
              "sRMSE than both",
              QUALITATIVE, ode_versus_sde),
    ClaimSpec("001", "two integration steps suffice for a one-step forecast", "[001] headline result, Kolmogorov flow",
              "the SI forecaster's lead-1 VRMSE with 2 sampler steps is within 10% of its VRMSE with 16",
              "VRMSE 0.55 for SI with 2 steps (FNO 0.74)", few_steps),
    ClaimSpec("001", "the SI forecaster forecasts better than a Fourier neural operator trained on the same data",
              "[001] headline result, Kolmogorov flow (SI against the FNO baseline)",
              "the better of the paper's two samplers (SI-E, SI-EM) at 2 steps has a lower lead-1 VRMSE than the FNO "
              "(both trained on the same trajectories for the same steps)",
              "VRMSE 0.55 for SI with 2 steps against 0.74 for the FNO", si_against_fno),
    ClaimSpec("001", "SI with one or two evaluations forecasts as well as a many-step diffusion model",
              "[001] comparison with diffusion baselines (2–5 integration steps against DDPM-style ~100)",
              "the SI forecaster's lead-1 VRMSE at 1 or 2 evaluations is no worse than the EDM diffusion baseline's at "
              "16 noise levels (31 evaluations)", f"{QUALITATIVE} (2–5 steps against ~100 for DDPM-style baselines)",
              si_against_edm),
    ClaimSpec("001", "stochastic sampling gives a calibrated ensemble, deterministic sampling an overconfident one",
              "[001] the SDE sampler's spread and its CRPS", "the SI-EM ensemble's spread–skill ratio is closer to 1 "
              "(in log) than the PF-ODE ensemble's at lead 10 (5 in --quick)", QUALITATIVE, calibration),
    ClaimSpec("002", "reverse-λ integration restores the fine scales of a coarse-grained field",
              "[002] Fig. 4 (super-resolution)", "integrating the coarse input from λ = 0.1 to 0 at least halves the "
              "high band's mean |log S/S_truth|", f"{QUALITATIVE} (Fig. 4: super-resolved spectra match the fine "
              "simulation)", super_resolution),
    ClaimSpec("002", "simulated at a fixed λ, the predictor keeps the coarse-grained truth's spectrum",
              "[002] Figs. 2–3 (the surrogate's PSD at λ = 0 and λ = 0.2)", "simulating at λ = 0.2 does not blow up "
              "and keeps the last step's spectrum within ×2 of the truth coarse-grained at 0.2 (mean |log ratio| over "
              "the held shells ≤ log 2)", f"{QUALITATIVE} (Figs. 2–3: the PSDs match the physics)", fixed_lambda),
    ClaimSpec("002", "on two-scale Lorenz-96 the predictor simulates the slow variables with the physics' spectrum",
              "[002] the Lorenz-96 experiment (the surrogate's PSD at λ = 0 and λ = 0.2 against the physics)",
              "simulating the slow variables at λ = 0 and at λ = 0.2 (noise on) for 2000 steps stays finite and keeps "
              "each band's (low, mid, high) mean |log PSD/PSD_physics at λ| within log 2, the rule of the Kolmogorov "
              "row above", f"{QUALITATIVE} (the PSDs match the physics at both λ)", lorenz96_spectra),
    ClaimSpec("003", "uniform VP recovers σ² but not p, uniform VE p but not σ², the dilated schedules both",
              "[003] the two-mode mixture experiment (d = 3000, k = 5)", "with 64 Euler steps on the exact drift at "
              "d = 10⁴ the four schedules split as the paper says (p̂ within 0.04, σ̂² within 15%)",
              f"{QUALITATIVE} (VP misses p, VE misses σ², time dilation gets both)", mixture_features),
    ClaimSpec("003", "dilated schedules need a number of steps that does not grow with d; uniform ones O(√d)",
              "[003] the complexity result (O(1) against O(√d) steps)", "over d = 10²…10⁵ the log–log slope of the "
              "steps that recover both features is above 0.35 for the uniform grids and below 0.15 for the dilated",
              f"{QUALITATIVE} (O(1) steps for the dilated schedules instead of O(√d))", complexity_in_d),
    ClaimSpec("003", "in a million dimensions the dilated schedules still need only a few steps",
              "[003] the complexity result, at a d beyond the paper's experiments", "at d = 10⁶ the dilated schedules "
              "recover both features in at most 64 Euler steps and the uniform ones need at least 10× as many",
              f"{QUALITATIVE} (O(1) steps for the dilated schedules instead of O(√d))", million_dimensions),
    ClaimSpec("003", "on Curie–Weiss spins too: uniform VP misses the phase, uniform VE the spins, dilation neither",
              "[003] the Curie–Weiss model", "with 32 Euler steps at d = 10⁴ the four schedules split as on the "
              "mixture", QUALITATIVE, spin_features),
    ClaimSpec("003", "on Curie–Weiss: dilated schedules need steps that do not grow with d; uniform ones O(√d)",
              "[003] the complexity result on the Curie–Weiss model", "over d = 10³…10⁴ the log–log slope of the steps "
              "is above 0.35 for the uniform grids and below 0.15 for the dilated", QUALITATIVE, spin_complexity_in_d),
    ClaimSpec("004", "pointwise rollouts drift out of the data's spectrum; SNS-refined rollouts stay in band",
              "[004] Kolmogorov flow: long rollouts of the surrogate alone and refined", "refined every 10 steps by "
              "SNS the surrogate keeps the high band within ×2 of the data's on at least 10 percentage points more of "
              "the steps than alone", f"{QUALITATIVE} (the surrogate drifts, SNS stays in distribution)", refinement),
    ClaimSpec("004", "SNS keeps the truth's temporal statistics better than the Thermalizer",
              "[004] Fig. 5 (C(τ)) and the rate of change R(t), SNS against the Thermalizer", "refined every 10 steps, "
              "SNS leaves C(τ) and R(t) closer to the truth's than the spectral-estimate Thermalizer (mean |ΔC| over "
              "the lags, mean |log R/R_truth|)", QUALITATIVE, temporal_consistency),
    ClaimSpec("004", "on the QG jet SNS stays in distribution where pointwise, Thermalizer-style and diffusion "
              "baselines fail", "[004] the two-layer QG jet experiment", "over 10⁴ steps the SNS-refined surrogate of "
              "both layers (every 10 steps, paper 004's SNS) does not blow up while the pointwise surrogate does "
              "(2000 steps in --quick)", QUALITATIVE, qg_stability),
)


def run_claim(*, root: str, index: int, quick: bool) -> Claim:
    """Claim ``CLAIMS[index]`` measured on the data folder ``root`` (on a cluster, the folder must be shared)."""
    spec = CLAIMS[index]
    ours, holds = spec.measure(DataStore(root), quick)
    return Claim(**spec.stated(), ours=ours, holds=bool(holds))


def run_claims(*, store: DataStore, quick: bool = True, callback: Callable[[dict], None] | None = None,
               scheduler: str | None = None) -> list[Claim]:
    """Every claim of ``CLAIMS``, in turn here or as one task each on the Dask cluster at ``scheduler``;
    ``quick`` sizes them for a 2-core CPU in about a minute."""
    install_defaults(store)
    parts = [{"root": str(store.root), "index": index, "quick": quick} for index in range(len(CLAIMS))]
    return map_parts(run_claim, parts, address=scheduler, progress=callback)
