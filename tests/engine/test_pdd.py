"""Predictor-driven diffusion: windows, the per-sample forward process, the reverse-λ integrators against the exact
Gaussian answer, training on 1-D and 2-D data, simulation, super-resolution, CLI and checkpoint errors."""
import json
import math

import pytest
import torch

from engine.cli import main
from engine.coarse import OUProcess, coarse_grain
from engine.config import ModelConfig, PDDConfig, PDDSamplerConfig, TrainingConfig
from engine.data.catalog import install_defaults
from engine.data.io import write_dataset
from engine.data.sequences import datasets_for, load_sequences, pick_sequences
from engine.data.store import DataStore
from engine.errors import EngineError
from engine.pdd import PDD, forward_sample, load_pdd, phi1, simulate_at_lambda, window_stack
from engine.pipelines.superres import run_superres
from engine.spectral import ortho_fft as _fft
from engine.spectral import ortho_ifft as _ifft
from engine.tasks.pdd import PDDTask
from engine.training import Trainer

OUR_OPTIONS = {"integrator": "gaussian", "grid": "geometric", "variance": "spectral"}  # not the paper's defaults


def test_window_stack_pads_the_start_with_zeros():
    x = torch.arange(1.0, 5.0).reshape(1, 4, 1).expand(1, 4, 2)  # frames 1, 2, 3, 4 of a 2-point signal
    windows = window_stack(x, 3)[:, :, 0]  # (transitions, window)
    assert windows.tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3]]


def test_phi1_matches_its_series_near_zero_and_its_formula_elsewhere():
    z = torch.tensor([0.0, 1e-14, 1e-3, 2.0, -3.0], dtype=torch.float64)
    expected = [1.0, 1.0, 1 + 1e-3 / 2 + 1e-6 / 6, math.expm1(2) / 2, math.expm1(-3) / -3]
    assert torch.allclose(phi1(z), torch.tensor(expected,
                                                dtype=torch.float64), rtol=1e-9)


def test_forward_sample_takes_each_samples_own_lambda():
    process = OUProcess(0.3, 2.0, 2)
    x = torch.randn(1, 3, 16, 16).expand(2, 3, 16, 16).contiguous()
    out = forward_sample(x, torch.tensor([0.0, 0.2]), process, torch.Generator().manual_seed(0))
    assert torch.allclose(out[0], x[0], atol=1e-5)  # λ = 0: the identity
    smooth, _ = coarse_grain(x[1], 0.2, process)
    residual = _fft((out[1] - smooth).double(), 2)  # what is left is noise with variance Q_k(0.2) per mode
    ratio = (residual.abs() ** 2).mean(0) / process.variance(0.2, 16)
    assert abs(float(ratio.mean()) - 1) < 0.1


class GaussianScore(PDD):
    """A PDD whose score is the exact marginal score of independent Gaussian frames with per-mode variance P_k."""

    def score(self, x, lam, kind="spectral"):
        return _ifft(-_fft(x, self.ndim) / self.marginal_variance(lam).float(), self.ndim)


def gaussian_model(n=16, ndim=2):
    process = OUProcess(0.3, 2.0, ndim)
    power = torch.ones((n,) * ndim, dtype=torch.float64)  # white data: P_k = 1 on every mode
    return GaussianScore(torch.nn.Linear(1, 1), process, 1, 2, 1.0, 0.0, 1.0, 1.0, power)


def lambda_marginal(model, lam, count, n, seed=0):
    """Independent frames with the exact per-mode variance v_k(λ) = e^{2μλ}P + Q_k(λ)."""
    white = torch.randn(count, 2, n, n, generator=torch.Generator().manual_seed(seed))
    return _ifft(model.marginal_variance(lam).float().sqrt() * _fft(white, 2), 2)


@pytest.mark.parametrize("integrator, grid, steps", [("gaussian", "geometric", 8), ("gaussian", "uniform", 3),
                                                     ("etd1", "uniform", 400)])
@pytest.mark.parametrize("method", ["ode", "sde"])
def test_reverse_lambda_maps_the_lambda_marginal_back_to_the_data(integrator, grid, steps, method):
    """From x_λ ~ N(0, v(λ)) per mode, reverse integration to λ = 0 must give variance P = 1 on every mode."""
    model, n, lam = gaussian_model(), 16, 0.3
    start = lambda_marginal(model, lam, 400, n, seed=1)
    assert float(model.marginal_variance(lam).min()) < 0.1  # far from white: fine modes hold ~1/k² noise
    out = model.reverse(start, PDDSamplerConfig(lam=lam, steps=steps, method=method, integrator=integrator, grid=grid),
                        torch.Generator().manual_seed(2))
    per_mode = (_fft(out, 2).abs() ** 2).mean((0, 1))
    assert abs(float(per_mode.mean()) - 1) < 0.03
    assert float((per_mode - 1).abs().max()) < 0.3  # 800 draws per mode: sampling error ≈ 0.05


def test_the_gaussian_integrator_is_exact_on_a_fine_grid_where_the_papers_etd1_diverges():
    model, lam = gaussian_model(64), 0.3
    start = lambda_marginal(model, lam, 8, 64)
    sampler = PDDSamplerConfig(lam=lam, steps=10, method="sde", grid="uniform", integrator="gaussian")
    plain = model.reverse(start, PDDSamplerConfig(**{**sampler.param.values(), "integrator": "etd1", "name": None}))
    assert not torch.isfinite(plain).all() or plain.abs().max() > 1e6  # |μ|max dλ ≈ 7.5: the explicit score cannot hold
    exact = model.reverse(start, sampler, torch.Generator().manual_seed(0))
    assert abs(float((_fft(exact, 2).abs() ** 2).mean()) - 1) < 0.02


def test_lambda_zero_is_the_identity():
    model = gaussian_model()
    x = torch.randn(2, 2, 16, 16)
    assert torch.equal(model.reverse(x, PDDSamplerConfig(lam=0.0)), x)
    assert torch.allclose(model.coarse_grain(x, 0.0), x, atol=1e-6)


@pytest.fixture(scope="module")
def lorenz_run(tmp_path_factory):
    """A tiny PDD predictor trained for 150 steps on two-scale Lorenz-96 (slow variables, 1-D)."""
    from engine.config import Lorenz96Config
    from engine.data.lorenz96 import simulate_lorenz96

    store = DataStore(tmp_path_factory.mktemp("pdd"))
    write_dataset(simulate_lorenz96(Lorenz96Config(snapshots=200, trajectories=2, spin_up=2.0)), store.path("l96.nc"))
    data = load_sequences(store.path("l96.nc"))
    task = PDDTask(data, PDDConfig(frames=6, window=2))
    Trainer(task, ModelConfig(size="tiny"), TrainingConfig(steps=150, batch_size=8, lr=2e-3, log_every=50),
            store.path("runs/l96")).run()
    return store


def test_a_pdd_checkpoint_records_the_resolved_process_and_trains_on_1d_data(lorenz_run):
    model = load_pdd(lorenz_run.path("runs/l96/checkpoint.pt"))
    assert (model.ndim, model.n, model.window, model.frames) == (1, 32, 2, 6)
    assert model.process.a == 0.1  # the Lorenz-96 reference constant, chosen from the data's dimension
    history = torch.load(lorenz_run.path("runs/l96/checkpoint.pt"), weights_only=True)["history"]
    assert history[-1][1] < history[0][1]


def test_simulation_at_fixed_lambda_keeps_shape_and_stays_finite(lorenz_run):
    model = load_pdd(lorenz_run.path("runs/l96/checkpoint.pt"))
    data = load_sequences(lorenz_run.path("l96.nc"))
    initial = data.denormalize(data.fields[0, :3])
    states = simulate_at_lambda(model, initial, lam=0.2, steps=40, generator=torch.Generator().manual_seed(0))
    assert states.shape == (3, 41, 32) and torch.isfinite(states).all()
    assert torch.equal(states[:, 0], initial)
    quiet = simulate_at_lambda(model, initial, lam=0.2, steps=5, noise=False)
    # no noise: deterministic
    assert torch.equal(quiet, simulate_at_lambda(model, initial, lam=0.2, steps=5, noise=False))


def test_superres_cli_reports_band_errors_and_writes_the_three_fields(lorenz_run, capsys):
    assert main(["--data-dir", str(lorenz_run.root), "superres", "--checkpoint", "runs/l96/checkpoint.pt",
                 "--data", "l96.nc",
                 "--lam", "0.2", "--lam-steps", "40", "--sequences", "3", "--out", "sr.nc", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["input_error"]) == {"low", "mid", "high"} and summary["nfe"] == 40
    from engine.data.io import open_dataset

    with open_dataset(lorenz_run.path("sr.nc")) as ds:
        assert ds["slow"].dims == ("sequence", "frame", "k") and ds["slow"].shape == (3, 6, 32)
        assert {"slow_coarse", "slow_truth", "spectrum"} <= set(ds.data_vars) and float(ds["lam"]) == 0.2


def test_superres_refuses_other_models_and_too_many_sequences(lorenz_run, capsys):
    assert main(["--data-dir", str(lorenz_run.root), "superres", "--checkpoint", "runs/l96/checkpoint.pt",
                 "--data", "l96.nc",
                 "--sequences", "1000"]) == 2
    assert "sequences of 6 frames asked for" in capsys.readouterr().err
    install_defaults(lorenz_run)
    with pytest.raises(EngineError, match="not a PDD predictor"):
        load_pdd(lorenz_run.path("runs/shipped-si-forecaster/checkpoint.pt"))


def test_pick_sequences_round_robin_over_trajectories():
    fields = torch.arange(2 * 10.0).reshape(2, 10, 1)
    picked = pick_sequences(fields, 3, 4)[..., 0]
    assert picked.tolist() == [[0, 1, 2, 3], [10, 11, 12, 13], [4, 5, 6, 7]]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A data folder with the built-in data and the shipped PDD predictor (64², 8 frames, trained at Δt = 0.02), and
    two fine sequences of the built-in test set saved at that Δt."""
    store = DataStore(tmp_path_factory.mktemp("shipped"))
    fine_dt = install_defaults(store)[3]
    model = load_pdd(store.path("runs/shipped-pdd/checkpoint.pt"))
    data = load_sequences(store.path(fine_dt))
    truth = model.normalize(pick_sequences(data.denormalize(data.fields), 2, model.frames))
    return store, fine_dt, model, truth


def test_the_shipped_predictor_super_resolves_kolmogorov_toward_the_fine_spectrum(shipped):
    store, fine_dt, _, _ = shipped
    sampler = PDDSamplerConfig(lam=0.1, steps=30, method="ode", **OUR_OPTIONS)
    result = run_superres(store=store, checkpoint="runs/shipped-pdd/checkpoint.pt", data=fine_dt, sampler=sampler,
                          sequences=2)
    summary, dataset = result.summary, result.dataset
    before, after = summary["input_error"], summary["output_error"]
    assert after["high"] < 0.7 * before["high"] and after["mid"] < 0.5 * before["mid"]
    assert dataset["vorticity"].shape == (2, 8, 64, 64) and dataset.attrs["integrator"] == "gaussian"


def test_with_the_exact_score_super_resolving_an_already_fine_field_changes_it_little():
    """At λ ≪ 1/|μ|max (every mode keeps > 96% of its amplitude) and data variance ≫ Q_k(λ), a fine field is almost a
    fixed point of reverse λ, while a coarse-grained one is moved back toward its fine original."""
    model, n, lam = gaussian_model(32), 32, 0.0003
    model.power = model.power * 10  # per-mode data variance 10 ≫ Q_k(λ) ≤ 6·10⁻⁴
    white = torch.randn(4, 2, n, n, generator=torch.Generator().manual_seed(0))
    fine = _ifft(model.power.float().sqrt() * _fft(white, 2), 2)
    coarse = model.coarse_grain(fine, lam, torch.Generator().manual_seed(1))
    sampler = PDDSamplerConfig(lam=lam, steps=10, method="ode", **OUR_OPTIONS)
    change = (model.reverse(fine, sampler) - fine).norm() / fine.norm()
    assert change < 0.02
    assert (model.reverse(coarse, sampler) - fine).norm() < 0.7 * (coarse - fine).norm()


def test_the_shipped_predictor_moves_an_already_fine_sequence_as_little_as_the_exact_gaussian_score(shipped):
    """At λ = 0.1/|μ|max (e^{μ_k λ} ≥ 0.9 for every mode) reverse λ moves a fine Kolmogorov sequence about half as
    much as a coarse-grained one, and no learned score can do much better: the exact score of Gaussian frames with
    the data's spectrum P_k does the same (faint modes with P_k ≲ Q_k(λ) are shrunk). The shipped predictor, whose
    one-step error at Δt = 0.02 is below sqrt(Q_k(λ)), matches it."""
    _, _, model, truth = shipped
    oracle = GaussianScore(model.net, model.process, model.window, model.frames, model.std_ratio, model.mean,
                           model.std, model.dt, model.power, model.variable)
    lam = 0.1 / float(model.process.rates(model.n).abs().max())
    sampler = PDDSamplerConfig(lam=lam, steps=10, method="ode", **OUR_OPTIONS)
    coarse = model.coarse_grain(truth, lam, torch.Generator().manual_seed(0))
    fine_change, oracle_change = ((m.reverse(truth, sampler) - truth).norm() / truth.norm() for m in (model, oracle))
    coarse_change = (model.reverse(coarse, sampler) - coarse).norm() / coarse.norm()
    assert fine_change < 0.03 and fine_change < 0.6 * coarse_change
    assert fine_change < 1.15 * oracle_change


def test_a_predictor_applies_only_to_data_saved_at_its_time_step(shipped, capsys):
    store, fine_dt, model, _ = shipped
    assert datasets_for(store, model.n, model.dt) == [fine_dt]  # not the Δt = 0.5 set, the 1-D Lorenz-96 or the GRFs
    kolmogorov = install_defaults(store)[0]
    with pytest.raises(EngineError, match=f"trained on snapshots Δt = 0.02 apart; .* is saved every 0.5: choose data "
                                          f"saved every 0.02 \\({fine_dt}\\)"):
        run_superres(store=store, checkpoint="runs/shipped-pdd/checkpoint.pt", data=kolmogorov,
                     sampler=PDDSamplerConfig(lam=0.1, steps=2))
    assert main(["--data-dir", str(store.root), "rollout", "--checkpoint", "runs/shipped-si-forecaster/checkpoint.pt",
                 "--data", fine_dt, "--steps", "2"]) == 2
    expected = f"trained on snapshots Δt = 0.5 apart; {fine_dt} is saved every 0.02: choose data saved every 0.5"
    assert f"{expected} ({kolmogorov})" in capsys.readouterr().err


def test_a_pdd_predictor_rolls_out_at_lambda_against_the_coarse_grained_truth(shipped, capsys):
    store = shipped[0]
    assert main(["--data-dir", str(store.root), "rollout", "--checkpoint", "runs/shipped-pdd/checkpoint.pt",
                 "--lam", "0.1",
                 "--steps", "6", "--members", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["blowup_step"] is None and summary["nfe"] == 6 and summary["vrmse"][0] == 0
    assert 0 < summary["vrmse"][1] < 1
    assert main(["--data-dir", str(store.root), "rollout", "--checkpoint", "runs/shipped-si-forecaster/checkpoint.pt",
                 "--lam", "0.1", "--steps", "2"]) == 2
    assert "only PDD predictors" in capsys.readouterr().err


def test_generation_starts_from_the_lambda_marginal_not_from_pure_noise(shipped):
    """At λ = 1 (a = 0.3, b² = 2, 64²) the largest scales keep a signal-to-noise ratio e^(2μλ)P_k/Q_k between 2 and
    20, so pure noise Q_k is not a sample there; the start of generation has the marginal's per-mode variance
    e^(2μλ)P_k + Q_k within 10% (2000 draws) and ≥ 3× the pure noise's at |k| = 1."""
    store = shipped[0]
    model = load_pdd(store.path("runs/shipped-pdd/checkpoint.pt"))
    snr = model.signal_to_noise(1.0)
    assert 2 < float(snr[0, 1]) < 20 and 2 < float(snr[1, 1]) < 20
    draws = model.prior_sample(1.0, (2000, 1, model.n, model.n), torch.Generator().manual_seed(0))[:, 0]
    measured = _fft(draws.double(), 2).abs().pow(2).mean(0)
    expected, noise = model.marginal_variance(1.0), model.process.variance(1.0, model.n)
    for mode in ((0, 1), (1, 0), (1, 1), (2, 1)):
        assert float(measured[mode] / expected[mode]) == pytest.approx(1, abs=0.1)
    assert float(expected[0, 1] / noise[0, 1]) > 3
