"""The Well's HDF5 files: small files written here in its documented layout (the_well's docs/data_format.md)."""
import h5py
import numpy as np
import pytest
import xarray as xr

from engine.cli import main
from engine.data.sequences import load_trajectories

B, T, W, H = 2, 6, 16, 16


def well_file(path, *, dims=2, sizes=(W, H), kinds=("periodic", "periodic"), grid="cartesian") -> dict:
    """A The Well-format file: scalar ``density``, vector ``velocity``, a constant ``obstacle``; returns its arrays."""
    rng = np.random.default_rng(0)
    names = ["x", "y", "z"][:dims]
    arrays = {"density": rng.normal(size=(B, T, *sizes)).astype(np.float32),
              "velocity": rng.normal(size=(B, T, *sizes, dims)).astype(np.float32)}
    with h5py.File(path, "w") as f:
        f.attrs.update(dataset_name="shear_flow_tiny", n_spatial_dims=dims, n_trajectories=B, grid_type=grid,
                       simulation_parameters=["Reynolds"], Reynolds=1e4)
        dimensions = f.create_group("dimensions")
        dimensions.attrs["spatial_dims"] = names
        dimensions.create_dataset("time", data=np.arange(T) * 0.25).attrs["sample_varying"] = False
        for name, size in zip(names, sizes):
            dimensions.create_dataset(name, data=np.linspace(0, 1, size, endpoint=False))
        conditions = f.create_group("boundary_conditions")
        for name, kind in zip(names, kinds):
            condition = conditions.create_group(f"{name}_{kind}")
            condition.attrs.update(associated_dims=[name], bc_type=kind.upper(), associated_fields=[])
        scalars = f.create_group("t0_fields")
        scalars.attrs["field_names"] = ["density", "obstacle"]
        scalars.create_dataset("density", data=arrays["density"]).attrs.update(
            time_varying=True, sample_varying=True, dim_varying=[True] * dims)
        scalars.create_dataset("obstacle", data=np.ones(sizes, dtype=np.float32)).attrs.update(
            time_varying=False, sample_varying=False, dim_varying=[True] * dims)
        vectors = f.create_group("t1_fields")
        vectors.attrs["field_names"] = ["velocity"]
        vectors.create_dataset("velocity", data=arrays["velocity"]).attrs.update(
            time_varying=True, sample_varying=True, dim_varying=[True] * dims)
    return arrays


def test_a_periodic_2d_file_is_imported_as_one_variable_per_component(tmp_path, capsys):
    arrays = well_file(tmp_path / "shear.hdf5")
    assert main(["--data-dir", str(tmp_path / "data"), "data", "import", str(tmp_path / "shear.hdf5")]) == 0
    assert "imported shear.nc" in capsys.readouterr().out
    with xr.open_dataset(tmp_path / "data" / "shear.nc") as ds:
        assert [name for name in ds.data_vars if name != "spectrum"] == ["density", "velocity_x", "velocity_y"]
        assert ds["density"].dims == ("trajectory", "time", "y", "x")
        # The Well's arrays are (…, x, y): our field at (y = j, x = i) is theirs at (i, j)
        np.testing.assert_array_equal(ds["density"].values, arrays["density"].transpose(0, 1, 3, 2))
        np.testing.assert_array_equal(ds["velocity_y"].values, arrays["velocity"][..., 1].transpose(0, 1, 3, 2))
        np.testing.assert_allclose(ds["time"].values, np.arange(T) * 0.25)
        assert ds.attrs["skipped_fields"] == "obstacle" and ds.attrs["dataset_name"] == "shear_flow_tiny"
        assert ds.attrs["Reynolds"] == 1e4 and ds.attrs["imported_from"] == "shear.hdf5"
    state = load_trajectories(tmp_path / "data" / "shear.nc")
    assert state.variables == ("density", "velocity_x", "velocity_y") and state.fields.shape == (B, T, 3, H, W)


@pytest.mark.parametrize("layout, reason", [
    ({"kinds": ("periodic", "open")}, "its y axis is open, not periodic; only grids periodic on both axes"),
    ({"kinds": ("wall", "periodic")}, "its x axis is wall, not periodic"),
    ({"dims": 3, "sizes": (8, 8, 8), "kinds": ("periodic",) * 3}, "a 3-D dataset; only 2-D fields"),
    ({"sizes": (16, 8)}, "its grid is 8×16; fields must be square with an even size ≥ 4"),
    ({"sizes": (15, 15)}, "its grid is 15×15; fields must be square with an even size"),
    ({"grid": "spherical"}, "its grid is spherical; only cartesian grids"),
])
def test_other_files_are_refused_in_one_line_that_says_why(tmp_path, capsys, layout, reason):
    well_file(tmp_path / "other.hdf5", **layout)
    assert main(["--data-dir", str(tmp_path / "data"), "data", "import", str(tmp_path / "other.hdf5")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: other.hdf5: ") and reason in error[0]
    assert not (tmp_path / "data" / "other.nc").exists()


def test_a_file_that_is_not_hdf5_is_refused(tmp_path, capsys):
    (tmp_path / "fake.hdf5").write_text("not an HDF5 file")
    assert main(["--data-dir", str(tmp_path / "data"), "data", "import", str(tmp_path / "fake.hdf5")]) == 2
    assert "fake.hdf5: not a readable HDF5 file" in capsys.readouterr().err
