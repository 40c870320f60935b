"""The fault and bad-input suite: every request a user can get wrong, through the CLI's ``main(argv)`` in this
process, against one prepared data folder. Each case must exit 2 with exactly one line on stderr that names the
cause (the fragment), print no traceback, and leave every file of the folder as it was, nothing added."""
import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from engine.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:You are writing invalid netcdf features")
GOOD = np.random.default_rng(0).normal(size=(2, 4, 8, 8)).astype(np.float32)


def _fields(values, **extra) -> xr.Dataset:
    n = values.shape[-1]
    coord = np.arange(n) * 2 * np.pi / n
    return xr.Dataset({"vorticity": (("trajectory", "time", "y", "x"), values), **extra},
                      coords={"time": np.arange(values.shape[1]) * 0.5, "y": coord, "x": coord})


def _bad_sources(outside: Path) -> None:
    """Files a user might try to import, outside the data folder."""
    nan = GOOD.copy()
    nan[0, 0, 0, 0] = np.nan
    sources = {"nan.nc": _fields(nan), "complex.nc": _fields(GOOD + 1j * GOOD),
               "nan-spectrum.nc": _fields(GOOD, spectrum=(("wavenumber",), np.array([0, 1, np.nan, 1, 1.0]))),
               "negative-spectrum.nc": _fields(GOOD, spectrum=(("wavenumber",), np.array([0, 1, -1, 1, 1.0]))),
               "huge.nc": _fields(GOOD * 3e37), "irregular.nc": _fields(GOOD).assign_coords(time=[0, 0.5, 1, 3.0]),
               "no-grid.nc": xr.Dataset({"u": (("a", "b"), np.ones((3, 4), np.float32))}),
               "constant.nc": _fields(np.ones_like(GOOD))}
    for name, ds in sources.items():
        ds.to_netcdf(outside / name, engine="h5netcdf", invalid_netcdf=name == "complex.nc")
    (outside / "not-netcdf.nc").write_text("hello")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A data folder with a GRF set, a short Kolmogorov set, a generator and an emulator run, a NaN set, broken
    checkpoints and state, a folder and a file where files and folders are expected, and links out of it."""
    root = tmp_path_factory.mktemp("faults")
    data, outside = root / "data", root / "outside"
    outside.mkdir()
    _bad_sources(outside)
    base = ["--data-dir", str(data)]
    assert main([*base, "data", "grf", "--size", "8", "--count", "8", "--out", "grf.nc"]) == 0
    assert main([*base, "data", "kolmogorov", "--size", "16", "--trajectories", "2", "--snapshots", "6",
                 "--spin-up", "0", "--save-interval", "0.1", "--out", "flow.nc"]) == 0
    tiny = ["--model-size", "tiny", "--steps", "2", "--batch-size", "2", "--device", "cpu"]
    assert main([*base, "train", "--data", "grf.nc", "--out", "runs/gen", *tiny]) == 0
    assert main([*base, "train", "--data", "flow.nc", "--task", "forecast", "--out", "runs/fc", *tiny]) == 0
    nan = GOOD.copy()
    nan[0, 0, 0, 0] = np.nan
    _fields(nan).to_netcdf(data / "nan.nc", engine="h5netcdf")
    (data / "empty.pt").write_bytes(b"")
    (data / "garbage.pt").write_bytes(b"\x80\x02 truncated pickle")
    (data / ".k.nc.partial.pt").write_bytes(b"\x80\x02 truncated pickle")
    (data / "folder.nc").mkdir()
    (data / "plain-file").write_text("not a run folder")
    os.symlink(outside / "nan.nc", data / "link-out.nc")
    os.symlink(data / "gone.nc", data / "dangling.nc")
    return data, outside


def _cases(data: Path, outside: Path) -> list[tuple[list[str], str]]:
    """(arguments after --data-dir, a fragment the one line must contain)."""
    fc, gen = "runs/fc/checkpoint.pt", "runs/gen/checkpoint.pt"
    tiny = ["--model-size", "tiny", "--steps", "2", "--batch-size", "2"]
    elsewhere = str(outside / "written-here.nc")
    return [
        # flags out of bounds or of the wrong kind
        (["data", "grf", "--size", "4", "--out", "x.nc"], "--size: "),
        (["data", "grf", "--size", "9", "--out", "x.nc"], "even"),
        (["data", "grf", "--count", "0", "--out", "x.nc"], "--count: "),
        (["data", "grf", "--slope", "-1", "--out", "x.nc"], "--slope: "),
        (["data", "grf", "--size", "eight"], "invalid int value: 'eight'"),
        (["data", "kolmogorov", "--viscosity", "-0.001", "--out", "x.nc"], "--viscosity: "),
        (["data", "kolmogorov", "--size", "16", "--forcing-wavenumber", "8", "--out", "x.nc"], "not resolved"),
        (["data", "kolmogorov", "--size", "33", "--out", "x.nc"], "even number"),
        (["data", "kolmogorov", "--size", "16", "--max-velocity", "0.01", "--spin-up", "1", "--out", "x.nc"],
         "raise max_velocity"),
        (["data", "kolmogorov", "--size", "16", "--trajectories", "1", "--snapshots", "2", "--spin-up", "0",
          "--out", "k.nc"], "delete it to start the run over"),
        (["data", "lorenz96", "--trajectories", "0", "--out", "x.nc"], "--trajectories: "),
        (["data", "coarse", "--data", "grf.nc", "--lam", "2", "--out", "c.nc"], "--lam: "),
        (["sample", "--data", "grf.nc", "--noise", "pink"], "invalid choice: 'pink'"),
        (["sample", "--data", "grf.nc", "--steps", "0"], "--steps: "),
        (["sample", "--data", "grf.nc", "--model", "analytic", "--count", "0"], "--count"),
        (["train", "--data", "grf.nc", "--out", "runs/x", "--task", "nonsense"], "invalid choice: 'nonsense'"),
        (["train", "--data", "grf.nc", "--out", "runs/x", "--model-size", "huge"], "invalid choice: 'huge'"),
        (["train", "--data", "grf.nc", "--out", "runs/x", "--batch-size", "0"], "--batch-size: "),
        (["train", "--data", "grf.nc", "--out", "runs/x", "--lr", "0"], "--lr: "),
        (["train", "--data", "grf.nc", "--out", "runs/x", "--precision", "half"], "invalid choice: 'half'"),
        (["sample", "--data", "grf.nc", "--model", "analytic", "--sampler-precision", "half"],
         "invalid choice: 'half'"),
        (["rollout", "--checkpoint", fc, "--data", "flow.nc", "--members", "0"], "--members: "),
        (["rollout", "--checkpoint", fc, "--data", "flow.nc", "--sampler", "rk45"], "invalid choice: 'rk45'"),
        (["train"], "required: --data, --out"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        # missing, unreadable or invalid inputs
        (["sample", "--data", "missing.nc", "--model", "analytic"], "no such data file"),
        (["sample", "--data", "nan.nc", "--model", "analytic"], "NaN or infinite"),
        (["sample", "--data", "dangling.nc", "--model", "analytic"], "no such data file"),
        (["data", "coarse", "--data", "nan.nc", "--lam", "0.1", "--out", "c.nc"], "NaN or infinite"),
        (["data", "import", str(outside / "nan.nc"), "--name", "copy.nc"], "NaN or infinite"),
        (["data", "import", str(outside / "complex.nc"), "--name", "copy.nc"], "complex values"),
        (["data", "import", str(outside / "nan-spectrum.nc"), "--name", "copy.nc"], "stored spectrum"),
        (["data", "import", str(outside / "negative-spectrum.nc"), "--name", "copy.nc"], "stored spectrum"),
        (["data", "import", str(outside / "huge.nc"), "--name", "copy.nc"], "too large to square"),
        (["data", "import", str(outside / "irregular.nc"), "--name", "copy.nc"], "time axis is not uniform"),
        (["data", "import", str(outside / "no-grid.nc"), "--name", "copy.nc"],
         "no variable with dims ending in (y, x)"),
        (["data", "import", str(outside / "not-netcdf.nc"), "--name", "copy.nc"], "not-netcdf.nc"),
        (["data", "import", str(outside / "missing.nc"), "--name", "copy.nc"], "missing.nc"),
        (["data", "import", str(outside / "nan.nc"), "--name", "grf.nc"], "already exists"),
        (["export", "--checkpoint", "empty.pt", "--out", "e.pt"], "not a readable checkpoint"),
        (["export", "--checkpoint", "garbage.pt", "--out", "e.pt"], "not a readable checkpoint"),
        (["export", "--checkpoint", "missing.pt", "--out", "e.pt"], "missing.pt"),
        (["animate", "--rollout", "grf.nc", "--out", "g.gif"], "not a rollout"),
        (["animate", "--rollout", "grf.nc", "--out", "g.avi"], ".avi"),
        (["rollout", "--checkpoint", "missing.pt", "--data", "flow.nc"], "missing.pt"),
        (["rollout", "--checkpoint", gen, "--data", "flow.nc"], "not a forecaster"),
        (["train", "--task", "pointwise", "--data", "grf.nc", "--out", "runs/x", *tiny], "no time dim"),
        (["rollout", "--checkpoint", "garbage.pt", "--data", "flow.nc"], "not a readable checkpoint"),
        (["rollout", "--checkpoint", fc, "--data", "flow.nc", "--initial-conditions", "9"],
         "9 initial conditions asked for"),
        (["rollout", "--checkpoint", fc, "--data", "flow.nc", "--start", "99"], "start index 99"),
        (["rollout", "--checkpoint", fc, "--data", "flow.nc", "--refiner", fc], "a refiner is a generative model"),
        (["rollout", "--checkpoint", fc, "--data", "flow.nc", "--lam", "0.5"], "only PDD predictors"),
        (["rollout", "--checkpoint", fc, "--data", "grf.nc"], "grf.nc"),
        (["rollout", "--checkpoint", fc, "--data", "flow.nc", "--scheduler", "10.0.0.5:8786"], "needs a protocol"),
        (["superres", "--checkpoint", fc, "--data", "flow.nc"], fc),
        (["train", "--data", "flow.nc", "--task", "forecast", "--lead", "9", "--out", "runs/x", *tiny], "too short"),
        (["train", "--data", "grf.nc", "--task", "generate", "--out", "runs/fc", *tiny], "another task"),
        (["train", "--data", "nan.nc", "--out", "runs/x", *tiny], "NaN or infinite"),
        # names outside the folder, outputs that would replace inputs or existing files
        (["data", "grf", "--size", "8", "--out", "../x.nc"], "outside the data folder"),
        (["data", "grf", "--size", "8", "--out", elsewhere], "outside the data folder"),
        (["data", "grf", "--size", "8", "--out", "x.txt"], "end in .nc"),
        (["train", "--data", str(outside / "nan.nc"), "--out", "runs/x"], "outside the data folder"),
        (["sample", "--data", "link-out.nc", "--model", "analytic"], "outside the data folder"),
        (["sample", "--data", "grf.nc", "--model", "analytic", "--out", "grf.nc"], "also this command's input"),
        (["data", "coarse", "--data", "grf.nc", "--out", "grf.nc"], "also this command's input"),
        (["export", "--checkpoint", gen, "--out", gen], "also this command's input"),
        (["data", "grf", "--size", "8", "--count", "8", "--out", "grf.nc"], "already exists"),
        (["export", "--checkpoint", gen, "--out", "flow.nc"], "already exists"),
        (["sample", "--data", "grf.nc", "--model", "analytic", "--out", "folder.nc"], "is a folder"),
        (["train", "--data", "grf.nc", "--out", "plain-file", "--steps", "2"], "is a file"),
        # requests that cannot fit in memory, refused before anything is allocated
        (["data", "grf", "--size", "2048", "--count", "300000"], "GiB available"),
        (["data", "kolmogorov", "--size", "4096", "--trajectories", "100000"], "GiB available"),
        (["sample", "--data", "grf.nc", "--model", "analytic", "--count", "1000000000"], "GiB available"),
        (["rollout", "--checkpoint", fc, "--data", "flow.nc", "--members", "4096", "--steps", "1000000"],
         "GiB available"),
        (["train", "--data", "grf.nc", "--out", "runs/big", "--batch-size", "4096", "--model-size", "large"],
         "GiB available"),
    ]


def _snapshot(root: Path) -> dict:
    """Every entry of the folder (links not followed): a file's size and modification time, a folder's presence
    (a run's lock, taken and released, touches its folder's time and nothing in it)."""
    entries = {}
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        is_folder = path.is_dir() and not path.is_symlink()
        entries[str(path.relative_to(root))] = "folder" if is_folder else (stat.st_size, stat.st_mtime_ns)
    return entries


def test_every_bad_request_gets_one_line_naming_its_cause_and_leaves_the_folder_as_it_was(folder, capsys):
    data, outside = folder
    cases = _cases(data, outside)
    assert len(cases) >= 60
    outside_before = _snapshot(outside)
    failures = []
    for args, fragment in cases:
        before = _snapshot(data)
        capsys.readouterr()
        code = main(["--data-dir", str(data), *args])
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        after = _snapshot(data)
        if code != 2 or len(lines) != 1 or fragment not in lines[0] or "Traceback" in captured.err:
            failures.append(f"{' '.join(args)} → exit {code}: {captured.err.strip()[-300:]!r}")
        elif after != before:
            changed = sorted(set(after.items()) ^ set(before.items()))
            failures.append(f"{' '.join(args)} changed the folder: {changed}")
    assert failures == [], "\n".join(failures)
    assert _snapshot(outside) == outside_before


def test_a_data_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    assert main(["--data-dir", str(tmp_path / "a-file"), "data", "list"]) == 2
    assert "is a file; --data-dir names a folder" in capsys.readouterr().err


def test_a_torchrun_world_that_does_not_add_up_is_one_line(folder, capsys, monkeypatch):
    data, _ = folder
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "5")
    assert main(["--data-dir", str(data), "train", "--data", "grf.nc", "--out", "runs/w", "--steps", "1"]) == 2
    assert "RANK 5 does not fit WORLD_SIZE 2" in capsys.readouterr().err
    assert not (data / "runs" / "w").exists()
