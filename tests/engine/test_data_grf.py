import numpy as np
import pytest
import torch
import xarray as xr

from engine.config import GRFConfig
from engine.data.fields import load_fields
from engine.data.grf import generate_grf, grf_power
from engine.data.io import write_dataset
from engine.errors import EngineError
from engine.spectral import shell_counts, shell_sum


def test_grf_dataset_has_coords_attrs_and_the_requested_spectrum(tmp_path):
    ds = generate_grf(GRFConfig(size=32, count=400, slope=2.5, seed=3))
    assert ds["field"].dims == ("sample", "y", "x") and ds.sizes["sample"] == 400
    assert ds.attrs["generator"] == "engine.data.grf" and ds.attrs["slope"] == 2.5
    assert float(ds["x"][1]) == pytest.approx(2 * np.pi / 32)
    expected = (shell_sum(grf_power(32, 2.5)) / shell_counts(32)).numpy()
    measured = ds["spectrum"].values
    assert np.allclose(measured[1:], expected[1:], rtol=0.15)
    path = write_dataset(ds, tmp_path / "grf.nc")
    data = load_fields(path)
    assert data.fields.shape == (400, 32, 32) and data.variable == "field"
    assert torch.allclose(data.spectrum, torch.from_numpy(measured))


def test_same_seed_same_fields():
    a = generate_grf(GRFConfig(size=16, count=2, seed=7))["field"].values
    b = generate_grf(GRFConfig(size=16, count=2, seed=7))["field"].values
    assert np.array_equal(a, b)


def _write(tmp_path, values, dims=("sample", "y", "x")):
    path = tmp_path / "bad.nc"
    xr.Dataset({"u": (dims, values)}).to_netcdf(path, engine="h5netcdf")
    return path


def test_loading_rejects_bad_files_with_specific_messages(tmp_path):
    with pytest.raises(EngineError, match="no such data file"):
        load_fields(tmp_path / "missing.nc")
    values = np.zeros((2, 8, 8), np.float32)
    values[1, 2, 3] = np.nan
    with pytest.raises(EngineError, match="NaN or infinite values in 1 of 2 fields"):
        load_fields(_write(tmp_path, values))
    with pytest.raises(EngineError, match="must be square"):
        load_fields(_write(tmp_path, np.zeros((2, 8, 6), np.float32)))
    with pytest.raises(EngineError, match=r"no variable with dims ending in \(y, x\)"):
        load_fields(_write(tmp_path, np.zeros((2, 8, 8), np.float32), ("sample", "a", "b")))
    (tmp_path / "text.nc").write_text("not netcdf")
    with pytest.raises(EngineError, match="not a readable netCDF file"):
        load_fields(tmp_path / "text.nc")


def test_write_is_atomic_and_leaves_no_temporary(tmp_path):
    ds = generate_grf(GRFConfig(size=8, count=1))
    write_dataset(ds, tmp_path / "a.nc")
    assert [p.name for p in tmp_path.iterdir()] == ["a.nc"]
