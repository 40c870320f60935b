import json
import subprocess
import sys

import numpy as np
import xarray as xr

from engine.cli import main


def _run(*args):
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True, timeout=300)


def test_grf_then_analytic_sample_json(tmp_path, capsys):
    data, out = tmp_path / "grf.nc", tmp_path / "samples.nc"
    assert main(["data", "grf", "--size", "32", "--count", "64", "--seed", "2", "--out", str(data)]) == 0
    capsys.readouterr()
    assert main(["sample", "--data", str(data), "--model", "analytic", "--noise", "matched", "--schedule", "linear",
                 "--sampler", "ode", "--steps", "16", "--count", "32", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["nfe"] == 16 and summary["seconds"] > 0
    assert {"spectral_error", "low_band_error", "mid_band_error", "high_band_error"} <= summary.keys()
    ds = xr.open_dataset(out, engine="h5netcdf")
    assert ds["field"].dims == ("sample", "y", "x") and ds.sizes["sample"] == 32
    assert ds.attrs["noise_kind"] == "matched" and ds.attrs["sampler_steps"] == 16
    assert np.isclose(ds.attrs["spectral_error"], summary["spectral_error"])


def test_train_then_sample_with_the_checkpoint_by_sde(tmp_path, capsys):
    data, run = tmp_path / "grf.nc", tmp_path / "run"
    main(["data", "grf", "--size", "16", "--count", "32", "--out", str(data)])
    assert main(["train", "--data", str(data), "--out", str(run), "--steps", "6", "--batch-size", "4",
                 "--noise", "white"]) == 0
    capsys.readouterr()
    assert main(["sample", "--data", str(data), "--checkpoint", str(run / "checkpoint.pt"), "--noise", "white",
                 "--schedule", "vp", "--sampler", "sde", "--steps", "4", "--count", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nfe"] == 4  # the score reuses the drift evaluation


def test_errors_are_one_line_without_traceback(tmp_path):
    bad = tmp_path / "nan.nc"
    values = np.ones((2, 8, 8), np.float32)
    values[0, 0, 0] = np.nan
    xr.Dataset({"u": (("s", "y", "x"), values)}).to_netcdf(bad, engine="h5netcdf")
    cases = [
        (["sample", "--data", str(tmp_path / "missing.nc"), "--model", "analytic"], "no such data file"),
        (["sample", "--data", str(bad), "--model", "analytic"], "NaN or infinite"),
        (["sample", "--data", str(bad), "--noise", "pink"], "invalid choice: 'pink'"),
        (["data", "grf", "--size", "4", "--out", str(tmp_path / "x.nc")], "--size: "),
        (["sample", "--data", str(bad), "--steps", "0"], "at least 1"),
    ]
    for args, fragment in cases:
        result = _run(*args)
        assert result.returncode == 2, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "x.nc").exists()


def test_importing_the_engine_loads_no_dashboard_library():
    code = ("import sys, engine, engine.cli, engine.generation, engine.training, engine.data.grf;"
            "bad = [m for m in ('panel', 'bokeh', 'holoviews', 'app') if m in sys.modules];"
            "print(','.join(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr
