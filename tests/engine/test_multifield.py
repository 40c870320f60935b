"""Whole states: a dataset of several fields is loaded, trained on, rolled out and scored as (channel, y, x)."""
import json

import numpy as np
import pytest
import torch
import xarray as xr

from engine.cli import main
from engine.config import ForecastSamplerConfig
from engine.data.sequences import load_trajectories
from engine.errors import EngineError
from engine.forecast import Forecaster, forecast_network, load_forecaster

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


def test_a_two_field_emulator_refuses_data_without_its_fields_and_one_field_tasks_refuse_two(folder, capsys):
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
    assert "--task generate learns one field; name one of upper, lower" in refusal(
        [*common, "train", "--data", "layers.nc", "--task", "generate", "--variables", "upper", "lower",
         "--out", "runs/g", "--steps", "1"], capsys)


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
