"""Whole states: a dataset of several fields is loaded, trained on, rolled out and scored as (channel, y, x)."""
import json

import numpy as np
import pytest
import torch
import xarray as xr

from engine.cli import main
from engine.config import ForecastSamplerConfig, ModelConfig, NoiseConfig, SamplerConfig, ScheduleConfig
from engine.data.sequences import load_trajectories
from engine.data.store import DataStore
from engine.errors import EngineError
from engine.forecast import Forecaster, forecast_network, load_forecaster
from engine.noise import cross_noise_spectra, sample_cross_noise
from engine.oracle import euler_cross_spectrum
from engine.pdd import load_pdd, simulate_at_lambda
from engine.pipelines.sample import sample
from engine.pipelines.train import model_preview
from engine.refine import load_refiner
from engine.samplers import uniform_grid
from engine.spectral import modal_cross_spectrum, rfft_wavenumbers, shell_index
from engine.tasks import make_task

N, TRAJECTORIES, TIMES = 16, 3, 12
SCALES = {"upper": (2e-5, 1e-6), "lower": (1.0, 40.0)}  # (std, mean): amplitudes 10⁶ apart, as a QG jet's layers


def two_layers(path, seed: int = 0) -> None:
    """A two-field dataset (trajectory, time, y, x) whose fields differ in amplitude and offset, with units."""
    rng = np.random.default_rng(seed)
    drift = np.cumsum(rng.normal(size=(2, TRAJECTORIES, TIMES, N, N)), axis=2) * 0.3 + rng.normal(size=(2, 1, 1, N, N))
    data = {name: (("trajectory", "time", "y", "x"), (std * field + mean).astype(np.float32), {"units": "1/s"})
            for (name, (std, mean)), field in zip(SCALES.items(), drift)}
    metres = ("x", np.arange(N) * 1e4, {"units": "m"})
    xr.Dataset(data, coords={"time": np.arange(TIMES) * 0.5, "x": metres, "y": ("y", *metres[1:])}).to_netcdf(path)


@pytest.fixture
def folder(tmp_path):
    two_layers(tmp_path / "layers.nc")
    return tmp_path


def test_the_default_state_is_every_field_each_normalized_on_its_own(folder):
    data = load_trajectories(folder / "layers.nc")
    assert data.variables == ("upper", "lower") and data.fields.shape == (TRAJECTORIES, TIMES, 2, N, N)
    per_field = data.fields.transpose(0, 2).flatten(1)
    assert torch.allclose(per_field.mean(1), torch.zeros(2), atol=1e-5)
    assert torch.allclose(per_field.std(1), torch.ones(2), atol=1e-5)
    with xr.open_dataset(folder / "layers.nc") as ds:
        raw = np.stack([ds["upper"].values, ds["lower"].values], 2)
    np.testing.assert_allclose(data.denormalize(data.fields).numpy(), raw, rtol=1e-5, atol=1e-11)
    assert load_trajectories(folder / "layers.nc", ["lower"]).fields.shape == (TRAJECTORIES, TIMES, N, N)
    with pytest.raises(EngineError, match="no variable middle; it has upper, lower"):
        load_trajectories(folder / "layers.nc", ["upper", "middle"])


def test_an_untrained_pointwise_emulator_of_two_fields_returns_each_field_in_its_own_units(folder):
    """The pointwise U-Net starts as the identity (its head is zero), so a forecast is x + 0 in normalized units:
    each field comes back in its own units through its own mean and std."""
    data = load_trajectories(folder / "layers.nc")
    net = forecast_network("pointwise", "tiny", channels=2)
    emulator = Forecaster(net, "pointwise", 1.0, data.mean, data.std, data.dt, N, variables=data.variables)
    state = data.denormalize(data.fields[:, 0])
    after = emulator.step(state, ForecastSamplerConfig())
    assert after.shape == (TRAJECTORIES, 2, N, N)
    torch.testing.assert_close(after, state, rtol=1e-5, atol=1e-11)


@pytest.mark.parametrize("task", ["forecast", "pointwise", "sns"])
def test_a_two_field_emulator_trains_rolls_out_and_is_scored_per_field(folder, capsys, task):
    common = ["--data-dir", str(folder)]
    assert main([*common, "train", "--data", "layers.nc", "--task", task, "--variables", "upper", "lower",
                 "--out", "runs/two", "--steps", "2", "--batch-size", "4"]) == 0
    recorded = torch.load(folder / "runs/two/checkpoint.pt", weights_only=True)["data"]
    data = load_trajectories(folder / "layers.nc")
    assert recorded["variables"] == ["upper", "lower"]
    np.testing.assert_allclose(recorded["std"], data.std.flatten().numpy(), rtol=1e-6)
    np.testing.assert_allclose(recorded["mean"], data.mean.flatten().numpy(), rtol=1e-6, atol=1e-12)
    assert load_forecaster(folder / "runs/two/checkpoint.pt").variables == ("upper", "lower")
    capsys.readouterr()
    assert main([*common, "rollout", "--checkpoint", "runs/two/checkpoint.pt", "--data", "layers.nc", "--steps", "3",
                 "--members", "2", "--initial-conditions", "2", "--sampler-steps", "2", "--out", "r.nc",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["per_variable"]) == {"upper", "lower"}
    fields = [np.asarray(summary["per_variable"][name]["vrmse"]) for name in ("upper", "lower")]
    np.testing.assert_allclose(summary["vrmse"], (fields[0] + fields[1]) / 2)
    with xr.open_dataset(folder / "r.nc") as ds:
        for name in ("upper", "lower"):
            assert ds[name].dims == ("member", "time", "y", "x") and ds[name].shape == (4, 4, N, N)
            assert ds[name].attrs["units"] == "1/s" and ds[f"{name}_truth"].attrs["units"] == "1/s"
            np.testing.assert_allclose(ds[f"{name}_vrmse"], summary["per_variable"][name]["vrmse"])
            assert ds[f"{name}_spectrum"].dims == ("step", "wavenumber")
        np.testing.assert_allclose(ds["upper_truth"].isel(time=0), ds["upper"].isel(time=0, member=[0, 2]))
        assert list(ds.attrs["variables"]) == ["upper", "lower"]
        np.testing.assert_array_equal(ds["x"], np.arange(N) * 1e4)  # the data's grid, not [0, 2π)
        assert ds["x"].attrs["units"] == "m" and ds["y"].attrs["units"] == "m"


def refusal(argv: list[str], capsys) -> str:
    """The one-line error a CLI call ends with (exit status 2)."""
    capsys.readouterr()
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_a_two_field_emulator_refuses_data_without_its_fields(folder, capsys):
    common = ["--data-dir", str(folder)]
    assert main([*common, "train", "--data", "layers.nc", "--task", "pointwise", "--out", "runs/two",
                 "--steps", "1", "--batch-size", "2"]) == 0  # the default: both fields
    with xr.open_dataset(folder / "layers.nc") as ds:
        ds[["upper"]].load().to_netcdf(folder / "upper.nc")
    rollout = [*common, "rollout", "--checkpoint", "runs/two/checkpoint.pt", "--steps", "2"]
    assert refusal([*rollout, "--data", "upper.nc"], capsys) == (
        "error: upper.nc has no lower, which runs/two/checkpoint.pt was trained on (upper, lower); it has upper")
    assert "trained on upper, lower; it cannot be rolled out on lower" in refusal(
        [*rollout, "--data", "layers.nc", "--variables", "lower"], capsys)


def test_a_two_field_rollout_animates_one_row_per_field(folder, capsys):
    common = ["--data-dir", str(folder)]
    assert main([*common, "train", "--data", "layers.nc", "--task", "pointwise", "--out", "runs/two",
                 "--steps", "1", "--batch-size", "2"]) == 0
    assert main([*common, "rollout", "--checkpoint", "runs/two/checkpoint.pt", "--data", "layers.nc", "--steps", "3",
                 "--members", "1", "--out", "r.nc"]) == 0
    from engine.animation import animation_frames

    with xr.open_dataset(folder / "r.nc") as ds:
        both, upper = animation_frames(ds, scale=2), animation_frames(ds, "upper", scale=2)
    assert both.shape[0] == upper.shape[0] == 4 and both.shape[1] == 2 * upper.shape[1]
    assert main([*common, "animate", "--rollout", "r.nc", "--out", "r.gif"]) == 0
    assert (folder / "r.gif").read_bytes()[:6] == b"GIF89a"


def correlated_snapshots(path, count: int = 200, seed: int = 0) -> None:
    """Snapshots of two correlated isotropic Gaussian fields (coherence 0.8 e^(−k/4)) in units 10⁴ apart."""
    ky, kx = rfft_wavenumbers(N)
    k = torch.sqrt(kx**2 + ky**2)
    s11, s22 = (1 + k**2) ** -2, 0.5 / (1 + k**2)
    s12 = 0.8 * torch.exp(-k / 4) * torch.sqrt(s11 * s22)
    cross = torch.stack([torch.stack([s11, s12], -1), torch.stack([s12, s22], -1)], -2)
    cross[0, 0] = 0.0
    x = sample_cross_noise(cross.to(torch.complex128), count, torch.Generator().manual_seed(seed), torch.float64)
    fields = {"upper": (x[:, 0] * 3.0, "m"), "lower": (x[:, 1] * 1e-4, "K")}
    xr.Dataset({name: (("sample", "y", "x"), values.numpy().astype(np.float32), {"units": units})
                for name, (values, units) in fields.items()}).to_netcdf(path)


def half_grid_coherence(cross: torch.Tensor) -> torch.Tensor:
    """Coherence of the shell means of Re S over the half-grid modes of shells 1 … N/2 − 1 (n, n/2 + 1, 2, 2)."""
    shells = shell_index(N)[:, : N // 2 + 1]
    means = torch.stack([cross[shells == k].real.mean(0) for k in range(1, N // 2)])
    return means[:, 0, 1] / torch.sqrt(means[:, 0, 0] * means[:, 1, 1])


def test_exact_drift_samples_of_two_correlated_fields_have_the_closed_form_coherence_within_0_03(tmp_path):
    """``sample`` with the exact drift on a two-field dataset: white noise, linear path, 6 Euler steps. The 3000
    samples' coherence per shell is the closed form's ``A S_n Aᴴ`` (``euler_cross_spectrum``) within 0.03 (3σ of
    the estimate at k = 1), which is not the data's (6 steps do not reach it); each field has its own units."""
    correlated_snapshots(tmp_path / "pair.nc")
    result = sample(store=DataStore(tmp_path), data="pair.nc", model=ModelConfig(kind="analytic"),
                    noise=NoiseConfig(kind="white"), schedule=ScheduleConfig(kind="linear"),
                    sampler=SamplerConfig(steps=6), count=3000, out="s.nc")
    setup = result.setup
    assert setup.variables == ("upper", "lower") and result.generated.samples.shape == (3000, 2, N, N)
    closed = euler_cross_spectrum(setup.drift, uniform_grid(6))
    measured = modal_cross_spectrum(result.generated.samples)
    torch.testing.assert_close(half_grid_coherence(measured), half_grid_coherence(closed), rtol=0.0, atol=0.03)
    data_coherence = half_grid_coherence(cross_noise_spectra("matched", N, setup.cross_shells))
    assert (half_grid_coherence(closed) - data_coherence).abs().max() > 0.05
    with xr.open_dataset(tmp_path / "s.nc") as ds:
        assert ds["upper"].shape == (3000, N, N) and ds["lower"].attrs["units"] == "K"
        assert list(ds.attrs["variables"]) == ["upper", "lower"] and "upper_spectrum" in ds
        assert ds.attrs["coherence_error"] == pytest.approx(result.summary["coherence_error"])


def test_a_two_field_generator_trains_samples_both_fields_and_refuses_data_without_them(tmp_path, capsys):
    """The default state of ``--task generate`` is every field: the checkpoint records both with their scales
    (each field's own pixel std), samples come back in each field's units, and data lacking a field is refused."""
    correlated_snapshots(tmp_path / "pair.nc")
    common = ["--data-dir", str(tmp_path)]
    assert main([*common, "train", "--data", "pair.nc", "--task", "generate", "--out", "runs/g", "--steps", "2",
                 "--batch-size", "4"]) == 0
    recorded = torch.load(tmp_path / "runs/g/checkpoint.pt", weights_only=True)["data"]
    with xr.open_dataset(tmp_path / "pair.nc") as ds:
        stds = [float(ds[name].astype("float64").std()) for name in ("upper", "lower")]
        ds[["upper"]].load().to_netcdf(tmp_path / "upper.nc")
    assert recorded["variables"] == ["upper", "lower"] and recorded["cross_spectrum"].shape == (2, 2, N // 2 + 1)
    np.testing.assert_allclose(recorded["scales"], stds, rtol=1e-5)
    preview = model_preview(make_task("generate", path=tmp_path / "pair.nc"), tmp_path / "runs/g/checkpoint.pt")
    assert preview["field"].shape == (2, N, N) and preview["variables"] == ["upper", "lower"]  # the whole state
    assert preview["spectrum"].shape == preview["data_spectrum"].shape == (2, N // 2 + 1)
    capsys.readouterr()
    assert main([*common, "sample", "--data", "pair.nc", "--model", "unet", "--checkpoint", "runs/g/checkpoint.pt",
                 "--steps", "2", "--count", "4", "--out", "g.nc", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {"upper_spectral_error", "lower_spectral_error", "coherence_error"} <= set(summary)
    assert summary["spectral_error"] == pytest.approx((summary["upper_spectral_error"]
                                                       + summary["lower_spectral_error"]) / 2)
    with xr.open_dataset(tmp_path / "g.nc") as ds:
        # an untrained U-Net's drift is zero: the samples are the matched noise, so each field keeps its own scale
        ratio = float(ds["upper"].std()) / float(ds["lower"].std())
        assert ratio == pytest.approx(stds[0] / stds[1], rel=0.5)
    sample_argv = [*common, "sample", "--model", "unet", "--checkpoint", "runs/g/checkpoint.pt", "--steps", "2"]
    assert refusal([*sample_argv, "--data", "upper.nc"], capsys) == "error: upper.nc: no variable lower; it has upper"
    assert refusal([*sample_argv, "--data", "pair.nc", "--variables", "lower"], capsys) == (
        "error: runs/g/checkpoint.pt was trained on states of upper, lower; the data gives lower")



def test_a_two_field_refiner_estimates_the_noise_level_of_whole_states_and_refines_them(tmp_path):
    """``--task refiner`` on two fields (white noise, vp): the spectral noise-level estimate reads each field's
    shells, so data states read as clean (t* near 1) and white noise as noise (α(t*)² > 0.8); renoised to 20% and
    refined, every state comes back with both fields, finite."""
    correlated_snapshots(tmp_path / "pair.nc")
    assert main(["--data-dir", str(tmp_path), "train", "--data", "pair.nc", "--task", "refiner", "--out", "runs/r",
                 "--steps", "1", "--batch-size", "2"]) == 0
    refiner = load_refiner(tmp_path / "runs/r/checkpoint.pt", torch.device("cpu"), renoise=0.2)
    with xr.open_dataset(tmp_path / "pair.nc") as ds:
        states = torch.from_numpy(np.stack([ds["upper"].values[:4], ds["lower"].values[:4]], 1))
    assert refiner.noise_level(states).min() > 0.9
    noise = refiner.colour_noise(torch.randn(4, 2, N, N, generator=torch.Generator().manual_seed(0)))
    assert float(refiner.schedule(refiner.noise_level(noise)).alpha.min() ** 2) > 0.8  # 5 shells of 16²: ±0.1
    refined, mask = refiner(states)
    assert refined.shape == states.shape and bool(mask.all()) and torch.isfinite(refined).all()


def test_a_two_field_pdd_predictor_trains_simulates_and_super_resolves_each_field(folder, capsys):
    """Paper 002's predictor on both fields: the checkpoint records them with each one's modal power P_k, a
    fixed-λ rollout and a super-resolution come back per field in its own units, and the summary's band errors are
    the mean of the fields'."""
    common = ["--data-dir", str(folder)]
    assert main([*common, "train", "--data", "layers.nc", "--task", "pdd", "--out", "runs/p", "--steps", "2",
                 "--batch-size", "2", "--frames", "4"]) == 0
    recorded = torch.load(folder / "runs/p/checkpoint.pt", weights_only=True)["data"]
    assert recorded["variables"] == ["upper", "lower"] and recorded["power"].shape == (2, N, N)
    np.testing.assert_allclose(recorded["power"].sum((1, 2)) / N**2, [1.0, 1.0], rtol=1e-3)  # Parseval: unit std
    model = load_pdd(folder / "runs/p/checkpoint.pt")
    data = load_trajectories(folder / "layers.nc")
    state = data.denormalize(data.fields[:, 0])  # (trajectory, field, y, x), physical units
    after = simulate_at_lambda(model, state, lam=0.0, steps=1, noise=False)[:, 1]
    assert after.shape == state.shape and torch.isfinite(after).all()
    change = (after - state).flatten(2).std(2) / state.flatten(2).std(2)  # each field moves in its own units
    assert float(change.max()) < 10
    capsys.readouterr()
    assert main([*common, "superres", "--checkpoint", "runs/p/checkpoint.pt", "--data", "layers.nc", "--lam-steps",
                 "2", "--out", "sr.nc", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    fields = summary["per_variable"]
    assert summary["output_error"]["high"] == pytest.approx(
        (fields["upper"]["output_error"]["high"] + fields["lower"]["output_error"]["high"]) / 2)
    with xr.open_dataset(folder / "sr.nc") as ds:
        for name, (std, mean) in SCALES.items():
            assert ds[name].dims == ("sequence", "frame", "y", "x") and ds[f"{name}_spectrum"].shape == (3, N // 2 + 1)
            assert abs(float(ds[f"{name}_truth"].mean()) - mean) < 5 * std  # each field in its own units
