"""Why paper 004's band claim fails here: one step of each surrogate from the test fields, then SNS, scored on the
high band, to tell the hypotheses apart (the surrogate's training length, seed and size; the refiner itself; its
renoise floor).

    python benchmarks/sns_band.py [--surrogates runs/shipped-pointwise/checkpoint.pt …] [--frames 32]

From 32 test frames u_{n−1} (the built-in Kolmogorov test set, 4 trajectories × 8 times) each surrogate makes
u'_n = F(u_{n−1}); SNS (the shipped pair denoiser) refines a state given its predecessor, at the levels it estimates
(paper 004) or renoised to at least 10% noise (our option). Printed per row: the high band's mean |log S/S_data|
(S_data: the test set's spectrum; ×2 is log 2 = 0.69, the claims row's band), the mean level SNS estimates for the
current frame (of K = 1000), and the VRMSE against the true u_n. The data's own u_n, refined, shows what SNS does to
a state already in band; the surrogates' rows show whether training longer, another seed or a larger network
moves the first step into the band. The default surrogates: the shipped one (tiny, 2000 steps), the three seeds of
`python benchmarks/seeds.py --system kolmogorov --models pointwise` (tiny, 600 steps) and a small one of 600 steps
(`python -m engine train --task pointwise --data <that training set> --model-size small --steps 600 --batch-size 16
--out runs/sns-band/pointwise-small-600`).
"""
from __future__ import annotations

import argparse

import torch
from report import main_publishing

from engine.checkpoints import load_checkpoint
from engine.config import ForecastSamplerConfig
from engine.data.catalog import install_defaults
from engine.data.sequences import load_trajectories
from engine.data.store import DataStore
from engine.forecast import load_forecaster
from engine.refine import load_refiner
from engine.spectral import band_log_errors, shell_spectra

SHIPPED_SNS = "runs/shipped-sns/checkpoint.pt"
SURROGATES = ["runs/shipped-pointwise/checkpoint.pt",
              *(f"runs/seeds-kolmogorov/pointwise-600-s{k}/checkpoint.pt" for k in range(3)),
              "runs/sns-band/pointwise-small-600/checkpoint.pt"]


def high_band_error(states: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean over the high shells the data holds of |log S/S_data|, S the states' mean shell spectrum."""
    return band_log_errors(shell_spectra(states).reshape(-1, reference.shape[0]).mean(0), reference)["high"]


def vrmse(states: torch.Tensor, truth: torch.Tensor) -> float:
    """sqrt(mean (u − v)² / var v) over the frames (paper 001's VRMSE, pooled)."""
    return float(((states - truth) ** 2).mean().sqrt() / truth.std())


def refined_rows(label: str, state: torch.Tensor, previous: torch.Tensor, truth: torch.Tensor, store: DataStore,
                 reference: torch.Tensor) -> None:
    """One row for the state as it is, one per SNS variant (estimated levels; renoised to ≥ 10%)."""
    print(f"| {label} | — | {high_band_error(state, reference):.2f} | — | {vrmse(state, truth):.3f} |")
    for name, renoise in (("SNS, paper's levels", 0.0), ("SNS, ≥ 10% noise", 0.1)):
        # loaded for each row, so that every row's renoising starts from the same seed
        refiner = load_refiner(store.path(SHIPPED_SNS), torch.device("cpu"), renoise=renoise, sns_steps=20)
        result = refiner.refine(previous, state)
        level = float(result.levels[:, 1].float().mean())
        print(f"| {label} | {name} | {high_band_error(result.states, reference):.2f} | {level:.0f} | "
              f"{vrmse(result.states, truth):.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--surrogates", nargs="+", default=SURROGATES, help="pointwise checkpoints (data folder)")
    parser.add_argument("--frames", type=int, default=8, help="times per test trajectory (4 trajectories)")
    parser.add_argument("--data-dir", help="data folder (default: $EMULATOR_STUDIO_DATA)")
    args = parser.parse_args()
    store = DataStore(args.data_dir)
    test = load_trajectories(store.path(install_defaults(store)[0]))
    fields = test.denormalize(test.fields)  # (trajectory, time, n, n): one field, vorticity
    if not 1 <= args.frames <= fields.shape[1] - 1:
        parser.error(f"--frames must be between 1 and {fields.shape[1] - 1}, not {args.frames}")
    n = fields.shape[-1]
    reference = shell_spectra(fields).reshape(-1, n // 2 + 1).mean(0)
    times = torch.linspace(1, fields.shape[1] - 1, args.frames).long()
    previous, truth = fields[:, times - 1].reshape(-1, n, n), fields[:, times].reshape(-1, n, n)
    print(f"\n### One step from {truth.shape[0]} test frames, then SNS (20 reverse steps at most)\n")
    print("| state | refined by | high band mean \\|log S/S_data\\| | SNS level (of 1000) | VRMSE |")
    print("|---|---|---|---|---|")
    refined_rows("the data's u_n", truth, previous, truth, store, reference)
    for path in args.surrogates:
        model = load_forecaster(store.path(path))
        trained = load_checkpoint(store.path(path))["configs"]
        label = (f"{trained['model']['size']} pointwise, {trained['training']['steps']} steps, seed "
                 f"{trained['training']['seed']}")
        state = model.step(previous, ForecastSamplerConfig())
        refined_rows(label, state, previous, truth, store, reference)


if __name__ == "__main__":
    main_publishing("sns_band", main)
