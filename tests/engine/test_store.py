import numpy as np
import pytest
import xarray as xr

from engine.config import AllenCahnConfig, GRFConfig, KolmogorovConfig, Lorenz96Config, QGConfig
from engine.data.catalog import (
    SHIPPED_ALLEN_CAHN,
    SHIPPED_KOLMOGOROV,
    SHIPPED_KOLMOGOROV_FINE,
    SHIPPED_LORENZ96,
    SHIPPED_QG,
    cached_name,
    ensure,
    install_defaults,
)
from engine.data.fields import load_fields
from engine.data.io import write_dataset
from engine.data.sequences import load_trajectories
from engine.data.store import DataStore
from engine.errors import EngineError
from tests.engine.test_faults import _fields as trajectory_fields


def _fields(values, dims=("time", "y", "x")):
    return xr.Dataset({"w": (dims, values)})


def test_names_outside_the_folder_are_refused(tmp_path):
    store = DataStore(tmp_path / "data")
    assert store.path("a.nc") == tmp_path / "data" / "a.nc"
    assert store.path(tmp_path / "data" / "sub" / "b.nc") == tmp_path / "data" / "sub" / "b.nc"
    for name in ("../a.nc", tmp_path / "a.nc", "/etc/passwd", "sub/../../a.nc"):
        with pytest.raises(EngineError, match="outside the data folder"):
            store.path(name)
    (tmp_path / "data" / "link").symlink_to(tmp_path)
    with pytest.raises(EngineError, match="outside the data folder"):
        store.path("link/a.nc")


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_write_is_atomic_round_trips_and_lists(tmp_path, suffix):
    store = DataStore(tmp_path)
    values = np.random.default_rng(0).normal(size=(3, 8, 8)).astype(np.float32)
    write_dataset(_fields(values).assign_attrs(generator="test"), store.path("a" + suffix))
    write_dataset(_fields(2 * values).assign_attrs(generator="test"), store.path("a" + suffix))  # overwrite
    assert [p.name for p in tmp_path.iterdir()] == ["a" + suffix]
    data = load_fields(store.path("a" + suffix))
    np.testing.assert_array_equal(data.fields.numpy(), 2 * values)
    [entry] = store.list()
    assert entry["name"] == "a" + suffix and entry["variables"] == {"w": {"time": 3, "y": 8, "x": 8}}
    assert entry["generator"] == "test"


def test_import_validates_and_explains(tmp_path):
    store = DataStore(tmp_path / "data")
    good = tmp_path / "good.nc"
    _fields(np.ones((2, 8, 8))).to_netcdf(good)
    assert store.import_file(good).name == "good.nc"
    imported = xr.open_dataset(store.path("good.nc"))
    assert imported.attrs["imported_from"] == "good.nc" and "spectrum" in imported
    with pytest.raises(EngineError, match="already exists"):
        store.import_file(good)
    cases = [
        (_fields(np.ones((2, 8, 6))), "must be square"),
        (_fields(np.ones((2, 7, 7))), "even size"),
        (_fields(np.ones((2, 8, 8)), ("time", "a", "b")), r"no variable with dims ending in \(y, x\)"),
        (_fields(np.full((2, 8, 8), np.inf)), "NaN or infinite values in 2 of 2 fields"),
    ]
    for i, (ds, message) in enumerate(cases):
        path = tmp_path / f"bad{i}.nc"
        ds.to_netcdf(path)
        with pytest.raises(EngineError, match=message):
            store.import_file(path)
    (tmp_path / "text.nc").write_text("not netcdf")
    with pytest.raises(EngineError, match="not a readable netCDF file"):
        store.import_file(tmp_path / "text.nc")
    assert store.names() == ["good.nc"]  # nothing half-imported


def test_generation_is_cached_by_parameters(tmp_path):
    store = DataStore(tmp_path)
    config = GRFConfig(size=8, count=2, seed=3)
    name = ensure(config, store)
    assert name == cached_name(GRFConfig(size=8, count=2, seed=3)) != cached_name(GRFConfig(size=8, count=2, seed=4))
    stamp = store.path(name).stat().st_mtime_ns
    assert ensure(config, store) == name and store.path(name).stat().st_mtime_ns == stamp


def test_defaults_are_real_kolmogorov_lorenz96_and_grf_data(tmp_path):
    store = DataStore(tmp_path)
    kolmogorov, grf, lorenz96, kolmogorov_fine, qg, allen_cahn = install_defaults(store)
    assert kolmogorov == cached_name(KolmogorovConfig(**SHIPPED_KOLMOGOROV))
    with store.open(kolmogorov) as ds:
        assert ds["vorticity"].dims == ("trajectory", "time", "y", "x")
        assert ds["vorticity"].shape == (4, 50, 64, 64) and ds.attrs["viscosity"] == 1e-3
        assert 1.0 < float(ds["vorticity"].std()) < 10.0
    assert load_fields(store.path(grf)).fields.shape == (256, 64, 64)
    assert lorenz96 == cached_name(Lorenz96Config(**SHIPPED_LORENZ96))
    with store.open(lorenz96) as ds:  # the two-scale system: K = 32 slow variables, J = 4 fast ones each
        assert ds["slow"].dims == ("trajectory", "time", "k") and ds["slow"].shape == (2, 400, 32)
        assert ds["fast"].shape == (2, 400, 128) and 2.0 < float(ds["slow"].std()) < 6.0
    assert kolmogorov_fine == cached_name(KolmogorovConfig(**SHIPPED_KOLMOGOROV_FINE))
    with store.open(kolmogorov_fine) as ds:  # the PDD predictor's test set: the same flow, saved every 0.02
        assert ds["vorticity"].shape == (8, 16, 64, 64)
        assert np.allclose(np.diff(ds["time"].values), 0.02)
    assert qg == cached_name(QGConfig(**SHIPPED_QG))
    with store.open(qg) as ds:  # paper 004's jet: both layers' PV, 36000 s apart, after the spin-up
        assert ds["pv_upper"].shape == ds["pv_lower"].shape == (2, 40, 64, 64) and ds.attrs["rd"] == 15e3
        assert np.allclose(np.diff(ds["time"].values), 36000.0) and float(ds["time"][0]) > 3e8
    assert allen_cahn == cached_name(AllenCahnConfig(**SHIPPED_ALLEN_CAHN))
    with store.open(allen_cahn) as ds:  # paper 000's non-Gaussian case: two phases, kurtosis far below a Gaussian's 3
        u = ds["u"].values.astype(np.float64)
        assert u.shape == (4, 40, 64, 64) and (u**4).mean() / (u**2).mean() ** 2 < 2.0


def test_train_says_it_resumes_and_from_which_step(tmp_path, capsys):
    from engine.cli import main

    folder = ["--data-dir", str(tmp_path)]
    assert main([*folder, "data", "grf", "--size", "8", "--count", "8", "--out", "grf.nc"]) == 0
    assert main([*folder, "train", "--data", "grf.nc", "--out", "runs/g", "--steps", "2", "--batch-size", "2"]) == 0
    capsys.readouterr()
    assert main([*folder, "train", "--data", "grf.nc", "--out", "runs/g", "--steps", "4", "--batch-size", "2"]) == 0
    assert "resuming an interrupted run at step 2 of 4" in capsys.readouterr().out


def test_trajectories_with_irregular_time_gaps_are_refused_when_loaded(tmp_path):
    """Import refuses them too (tests/engine/test_faults.py holds the import cases)."""
    values = np.random.default_rng(0).normal(size=(2, 4, 8, 8)).astype(np.float32)
    source = tmp_path / "irregular.nc"
    trajectory_fields(values).assign_coords(time=[0.0, 0.5, 1.0, 3.0]).to_netcdf(source, engine="h5netcdf")
    with pytest.raises(EngineError, match="time axis is not uniform"):
        load_trajectories(source)
