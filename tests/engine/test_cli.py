import json
import subprocess
import sys

import numpy as np
import xarray as xr

from engine.cli import main


def test_grf_then_analytic_sample_json(tmp_path, capsys):
    data, out = tmp_path / "grf.nc", tmp_path / "samples.nc"
    assert main(["--data-dir", str(tmp_path), "data", "grf", "--size", "32", "--count", "64", "--seed", "2",
                 "--out", "grf.nc"]) == 0
    capsys.readouterr()
    common = ["--data-dir", str(tmp_path), "sample", "--data", "grf.nc", "--model", "analytic", "--noise", "matched",
              "--count", "32", "--json"]
    assert main(["--data-dir", str(tmp_path), "sample", "--data", str(data), "--model", "analytic",
                 "--noise", "matched", "--schedule", "linear",
                 "--sampler", "ode", "--steps", "16", "--count", "32", "--out", "samples.nc", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["nfe"] == 16 and summary["seconds"] > 0
    assert {"spectral_error", "low_band_error", "mid_band_error", "high_band_error"} <= summary.keys()
    ds = xr.open_dataset(out, engine="h5netcdf")
    assert ds["field"].dims == ("sample", "y", "x") and ds.sizes["sample"] == 32
    assert ds.attrs["noise_kind"] == "matched" and ds.attrs["sampler_steps"] == 16
    assert np.isclose(ds.attrs["spectral_error"], summary["spectral_error"])
    capsys.readouterr()  # RK4, paper 000's sampler: four evaluations a step, and closer to the data at 4 steps
    euler, rk4 = ([*common, "--steps", "4", "--integrator", integrator] for integrator in ("euler", "rk4"))
    errors = {}
    for name, args in (("euler", euler), ("rk4", rk4)):
        assert main(args) == 0
        errors[name] = json.loads(capsys.readouterr().out)
    assert errors["rk4"]["nfe"] == 16 and errors["rk4"]["spectral_error"] < errors["euler"]["spectral_error"]


def test_train_then_sample_with_the_checkpoint_by_sde(tmp_path, capsys):
    folder, run = ["--data-dir", str(tmp_path)], tmp_path / "run"
    main([*folder, "data", "grf", "--size", "16", "--count", "32", "--out", "grf.nc"])
    assert main([*folder, "train", "--data", "grf.nc", "--out", str(run), "--steps", "6", "--batch-size", "4",
                 "--noise", "white"]) == 0
    capsys.readouterr()
    assert main([*folder, "sample", "--data", "grf.nc", "--checkpoint", str(run / "checkpoint.pt"), "--noise", "white",
                 "--schedule", "vp", "--sampler", "sde", "--steps", "4", "--count", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nfe"] == 4  # the score reuses the drift evaluation


def test_coarse_import_and_list(tmp_path, capsys):
    folder = ["--data-dir", str(tmp_path / "data")]
    assert main([*folder, "data", "grf", "--size", "16", "--count", "8"]) == 0
    name = capsys.readouterr().out.split()[1]
    assert name.startswith("grf-16-") and name.endswith(".nc")
    assert main([*folder, "data", "grf", "--size", "16", "--count", "8"]) == 0
    assert "already" in capsys.readouterr().out  # cached by parameters
    assert main([*folder, "data", "coarse", "--data", name, "--lam", "0.05", "--out", "coarse.zarr"]) == 0
    coarse = xr.open_zarr(tmp_path / "data" / "coarse.zarr")
    assert float(coarse["lam"]) == 0.05 and {"field", "field_smooth"} <= set(coarse.data_vars)
    own = tmp_path / "mine.nc"
    xr.Dataset({"w": (("time", "y", "x"), np.random.default_rng(0).normal(size=(3, 8, 8)))}).to_netcdf(own)
    assert main([*folder, "data", "import", str(own)]) == 0
    capsys.readouterr()
    assert main([*folder, "data", "list", "--json"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    assert set(entries) == {name, "coarse.zarr", "mine.nc"}
    assert entries["mine.nc"]["variables"]["w"] == {"time": 3, "y": 8, "x": 8}
    assert entries["coarse.zarr"]["lam"] == 0.05 and entries[name]["generator"] == "engine.data.grf"


def test_importing_the_engine_loads_no_dashboard_library():
    code = ("import sys, engine, engine.cli, engine.generation, engine.training, engine.data.grf;"
            "bad = [m for m in ('panel', 'bokeh', 'holoviews', 'app') if m in sys.modules];"
            "print(','.join(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_train_an_emulator_and_a_refiner_then_roll_out_with_json(tmp_path, capsys):
    folder = ["--data-dir", str(tmp_path)]
    assert main([*folder, "data", "kolmogorov", "--size", "16", "--trajectories", "2", "--snapshots", "12",
                 "--spin-up", "2", "--out", "flow.nc"]) == 0
    for task in ("forecast", "refiner"):
        assert main([*folder, "train", "--task", task, "--data", "flow.nc", "--out", str(tmp_path / task),
                     "--steps", "4", "--batch-size", "4"]) == 0
    capsys.readouterr()
    assert main([*folder, "rollout", "--checkpoint", str(tmp_path / "forecast" / "checkpoint.pt"), "--data", "flow.nc",
                 "--steps", "6", "--members", "2", "--sampler", "si_em", "--sampler-steps", "2",
                 "--refiner", str(tmp_path / "refiner" / "checkpoint.pt"), "--out", "roll.nc", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["lead_steps"] == list(range(7)) and len(summary["vrmse"]) == 7 and summary["vrmse"][0] == 0
    assert set(summary["band_errors"]) == {"low", "mid", "high"} and summary["blowup_step"] is None
    assert summary["nfe"] == 6 * 2 and summary["seconds"] > 0
    assert summary["crps"][0] == 0 and len(summary["crps"]) == len(summary["spread_skill"]) == 7
    assert all(value > 0 for value in summary["crps"][1:]) and summary["transition_w1"] > 0
    ds = xr.open_dataset(tmp_path / "roll.nc")
    assert ds["vorticity"].dims == ("member", "time", "y", "x") and ds.sizes["member"] == 2
    np.testing.assert_allclose(ds["crps"].values, summary["crps"])
    assert list(ds["lead"].values) == list(range(7))
    # the truth rides along: the test data at the saved steps, NaN past its 12 snapshots
    truth = ds["vorticity_truth"].isel(trajectory=0)
    assert truth.dims == ("time", "y", "x") and np.isfinite(truth.values).all()
    np.testing.assert_allclose(truth.isel(time=0).values, ds["vorticity"].isel(member=0, time=0).values, rtol=1e-5)
    from PIL import Image

    assert main([*folder, "animate", "--rollout", "roll.nc", "--out", "roll.gif", "--scale", "2"]) == 0
    gif = Image.open(tmp_path / "roll.gif")
    assert gif.n_frames == 7 and gif.size == (2 * 16 * 2 + 4, 14 + 16 * 2)  # truth | emulator under a caption
    assert main([*folder, "animate", "--rollout", "roll.nc", "--out", "roll.mp4"]) == 0
    assert (tmp_path / "roll.mp4").read_bytes()[4:8] == b"ftyp"  # an MP4 container (imageio-ffmpeg's encoder)


def test_an_existing_output_is_replaced_only_with_overwrite(tmp_path):
    """The refusals (an output that is an input, an existing file without --overwrite) are in test_faults.py."""
    folder = ["--data-dir", str(tmp_path)]
    assert main([*folder, "data", "grf", "--size", "8", "--count", "8", "--out", "grf.nc"]) == 0
    before = (tmp_path / "grf.nc").read_bytes()
    assert main([*folder, "data", "grf", "--size", "8", "--count", "8", "--seed", "3", "--out", "grf.nc"]) == 2
    assert main([*folder, "data", "grf", "--size", "8", "--count", "8", "--seed", "3", "--out", "grf.nc",
                 "--overwrite"]) == 0
    assert (tmp_path / "grf.nc").read_bytes() != before


def test_every_output_records_its_dataset_and_the_device_that_ran(tmp_path):
    """Samples, rollouts and generated data name their dataset and the device that ran, never ``auto``."""
    folder = ["--data-dir", str(tmp_path)]
    assert main([*folder, "data", "grf", "--size", "16", "--count", "8", "--out", "g.nc"]) == 0
    assert main([*folder, "sample", "--data", "g.nc", "--model", "analytic", "--steps", "2", "--count", "2",
                 "--out", "s.nc"]) == 0
    assert main([*folder, "data", "kolmogorov", "--size", "16", "--trajectories", "1", "--snapshots", "6",
                 "--spin-up", "0", "--save-interval", "0.1", "--out", "k.nc"]) == 0
    assert main([*folder, "train", "--data", "k.nc", "--task", "pointwise", "--out", "runs/p", "--model-size",
                 "tiny", "--steps", "2", "--batch-size", "2"]) == 0
    assert main([*folder, "rollout", "--checkpoint", "runs/p/checkpoint.pt", "--data", "k.nc", "--steps", "2",
                 "--members", "1", "--initial-conditions", "1", "--out", "r.nc"]) == 0
    for name, data in (("s.nc", "g.nc"), ("r.nc", "k.nc")):
        with xr.open_dataset(tmp_path / name, engine="h5netcdf") as ds:
            assert ds.attrs["data"] == data and ds.attrs["device"] == "cpu", name
    with xr.open_dataset(tmp_path / "k.nc", engine="h5netcdf") as ds:
        assert ds.attrs["device"] == "cpu"


def test_a_refiner_of_another_system_is_refused_with_the_reason(tmp_path, capsys):
    """An Allen–Cahn generator (field u) refining Kolmogorov vorticity faded the field; it is refused before any
    step, naming both fields."""
    from engine.data.catalog import install_defaults
    from engine.data.store import DataStore

    kolmogorov, *_ = install_defaults(DataStore(tmp_path))
    capsys.readouterr()
    code = main(["--data-dir", str(tmp_path), "rollout", "--checkpoint", "runs/shipped-si-forecaster/checkpoint.pt",
                 "--data", kolmogorov, "--refiner", "runs/shipped-ac-white-linear/checkpoint.pt", "--steps", "2"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "was trained on u" in err and "the test data is vorticity" in err
