"""The faults around the input: a full disk, a read-only folder, odd folder entries, two writers on one run, names
that look like temporaries, and writers killed mid-write. Each case, through the CLI's ``main(argv)`` in this
process, must exit 2 with one line naming the cause, print no traceback, leave no temporary behind and leave every
earlier file byte for byte as it was.

A full disk and a read-only folder are real: a small tmpfs mounted for the test (root can mount one on this
project's machines); where mounting is refused those cases skip and the mocked ``ENOSPC`` test still runs.
"""
import errno
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import engine.files
from engine.cli import main
from engine.files import LOCK, SCRATCH, run_lock

TINY = ["--model-size", "tiny", "--steps", "2", "--batch-size", "2", "--device", "cpu"]


def _contents(root: Path) -> dict:
    """Every entry under ``root`` (links not followed): a file's SHA-1, a folder's or a link's kind."""
    entries = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            entries[key] = f"link to {os.readlink(path)}"
        elif path.is_dir():
            entries[key] = "folder"
        else:
            entries[key] = hashlib.sha1(path.read_bytes()).hexdigest()
    return entries


def _refused(args: list[str], fragment: str, capsys) -> str:
    """Run the CLI; the case must exit 2 with one error line, the last, holding ``fragment`` (a training that
    fails at its checkpoint has shown its progress bar before) and no traceback; returns that line."""
    capsys.readouterr()
    code = main(args)
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert code == 2 and errors == lines[-1:] and fragment in errors[0], (args, lines)
    assert not any("Traceback" in line for line in lines), lines
    return errors[0]


def _prepare(folder: Path) -> None:
    base = ["--data-dir", str(folder)]
    assert main([*base, "data", "grf", "--size", "16", "--count", "8", "--out", "g.nc"]) == 0
    assert main([*base, "train", "--data", "g.nc", "--out", "runs/a", *TINY]) == 0


def _line_starting(word: str, stream) -> str:
    """The first line of a child's output that starts with ``word`` (it may say that it resumes before)."""
    for line in stream:
        if line.startswith(word):
            return line
    raise AssertionError(f"the child ended without saying {word!r}")


@pytest.fixture
def tmpfs(tmp_path):
    """A 6 MiB tmpfs at a fresh mount point (unmounted afterwards), or a skip where mounting is refused."""
    point = tmp_path / "disk"
    point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(point)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


def test_a_full_disk_is_refused_before_the_work_and_caught_during_the_write(tmpfs, capsys, monkeypatch):
    """Before: the output's estimate against the free bytes. During (the disk filled meanwhile; the estimate is
    made to pass): the write's own ENOSPC, netCDF, zarr and checkpoints alike, new files and replacements."""
    _prepare(tmpfs)
    free = engine.files.free_bytes(tmpfs)
    (tmpfs / "filler").write_bytes(b"\0" * (free - 64 * 1024))  # 64 KiB left
    before = _contents(tmpfs)
    base = ["--data-dir", str(tmpfs)]
    early = [(["data", "grf", "--size", "64", "--count", "256", "--out", "big.nc"], "big.nc needs about 4.0 MiB"),
             (["sample", "--data", "g.nc", "--model", "analytic", "--count", "64", "--out", "s.nc"], "s.nc needs"),
             (["train", "--data", "g.nc", "--out", "runs/b", *TINY], "checkpoint.pt needs about"),
             (["train", "--data", "g.nc", "--out", "runs/a", *TINY[:2], "--steps", "4", "--batch-size", "2"],
              "checkpoint.pt needs about"),
             (["export", "--checkpoint", "runs/a/checkpoint.pt", "--out", "e.pt"], "e.pt needs about")]
    for args, fragment in early:
        _refused([*base, *args], fragment, capsys)
        assert _contents(tmpfs) == before, args
    monkeypatch.setattr(engine.files, "free_bytes", lambda folder: 2**40)  # the estimate passes: the write fails
    late = [["data", "grf", "--size", "64", "--count", "64", "--out", "big.nc"],
            ["data", "grf", "--size", "64", "--count", "64", "--seed", "3", "--out", "g.nc", "--overwrite"],
            ["data", "grf", "--size", "64", "--count", "64", "--out", "big.zarr"],
            ["sample", "--data", "g.nc", "--model", "analytic", "--count", "64", "--out", "s.nc"],
            ["train", "--data", "g.nc", "--out", "runs/b", *TINY],
            ["train", "--data", "g.nc", "--out", "runs/a", *TINY[:2], "--steps", "4", "--batch-size", "2"],
            ["export", "--checkpoint", "runs/a/checkpoint.pt", "--out", "e.pt"]]
    for args in late:
        line = _refused([*base, *args], "No space left on device", capsys)
        assert "nothing was changed" in line
        assert _contents(tmpfs) == before, args  # no temporary left, g.nc and the checkpoint as they were


def test_a_read_only_data_folder_is_refused_in_one_line_and_still_lists(tmpfs, capsys):
    _prepare(tmpfs)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    before = _contents(tmpfs)
    base = ["--data-dir", str(tmpfs)]
    outside = tmpfs.parent / "outside.nc"
    assert main(["--data-dir", str(tmpfs.parent / "elsewhere"), "data", "grf", "--size", "8", "--count", "2",
                 "--out", str(outside.name)]) == 0
    cases = [["sample", "--data", "g.nc", "--model", "analytic", "--out", "s.nc"],
             ["data", "grf", "--size", "8", "--count", "2", "--out", "x.nc"],
             ["data", "import", str(tmpfs.parent / "elsewhere" / outside.name), "--name", "imported.nc"],
             ["data", "coarse", "--data", "g.nc", "--lam", "0.1", "--out", "c.nc"],
             ["train", "--data", "g.nc", "--out", "runs/b", *TINY],
             ["train", "--data", "g.nc", "--out", "runs/a", *TINY[:2], "--steps", "4", "--batch-size", "2"],
             ["export", "--checkpoint", "runs/a/checkpoint.pt", "--out", "e.pt"]]
    for args in cases:
        _refused([*base, *args], "read-only file system", capsys)
    assert main([*base, "data", "list"]) == 0 and "g.nc" in capsys.readouterr().out
    assert _contents(tmpfs) == before


def test_a_mocked_enospc_at_the_write_boundary_removes_the_temporary_and_keeps_the_old_file(tmp_path, capsys,
                                                                                           monkeypatch):
    """Where no tmpfs can be mounted this still holds the boundary: a write that fails half-way."""
    base = ["--data-dir", str(tmp_path)]
    assert main([*base, "data", "grf", "--size", "8", "--count", "4", "--out", "g.nc"]) == 0
    before = _contents(tmp_path)

    def half_then_full(path, view):
        path.write_bytes(bytes(view[: view.nbytes // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(engine.files, "write_all", half_then_full)
    _refused([*base, "data", "grf", "--size", "8", "--count", "4", "--seed", "9", "--out", "g.nc", "--overwrite"],
             "No space left on device", capsys)
    _refused([*base, "train", "--data", "g.nc", "--out", "runs/a", *TINY], "No space left on device", capsys)
    assert _contents(tmp_path) == before


def test_a_listing_survives_any_entry_and_names_the_skipped_ones_in_one_warning(tmp_path, capsys):
    base = ["--data-dir", str(tmp_path)]
    assert main([*base, "data", "grf", "--size", "8", "--count", "2", "--out", "good.nc"]) == 0
    (tmp_path / "loop.nc").symlink_to(tmp_path / "loop.nc")
    (tmp_path / "dangling.nc").symlink_to(tmp_path / "gone.nc")
    (tmp_path / "folder.nc").mkdir()
    (tmp_path / "garbage.nc").write_text("not netCDF")
    (tmp_path / "escape.nc").symlink_to(tmp_path.parent)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "up").symlink_to(tmp_path)  # a folder loop: not followed
    capsys.readouterr()
    assert main([*base, "data", "list"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith("good.nc") and len(out.splitlines()) == 1
    [warning] = err.strip().splitlines()
    assert warning.startswith("warning: skipped 5 unreadable entries")
    for name, reason in [("loop.nc", "loops back on itself"), ("dangling.nc", "does not exist"),
                         ("folder.nc", "a folder, not a netCDF file"), ("garbage.nc", "not a readable netCDF"),
                         ("escape.nc", "outside the data folder")]:
        assert f"{name} (" in warning and reason in warning
    for args, fragment in [(["sample", "--data", "loop.nc", "--model", "analytic"], "loops back on itself"),
                           (["train", "--data", "loop.nc", "--out", "runs/x", *TINY], "loops back on itself"),
                           (["sample", "--data", "folder.nc", "--model", "analytic"], "a folder, not a netCDF"),
                           (["train", "--data", "dangling.nc", "--out", "runs/x", *TINY], "no such data file")]:
        _refused([*base, *args], fragment, capsys)
    assert not (tmp_path / "runs").exists()


def test_a_second_writer_on_a_run_is_refused_naming_the_first_and_a_dead_holder_releases_it(tmp_path, capsys):
    base = ["--data-dir", str(tmp_path)]
    _prepare(tmp_path)
    before = _contents(tmp_path)
    with run_lock(tmp_path / "runs" / "a", "a training"):
        for args in (["train", "--data", "g.nc", "--out", "runs/a", *TINY[:2], "--steps", "4", "--batch-size", "2"],
                     ["export", "--checkpoint", "runs/a/checkpoint.pt", "--out", "e.pt"]):
            line = _refused([*base, *args], "runs/a is in use by a training (pid", capsys)
            assert f"pid {os.getpid()}" in line
    assert _contents(tmp_path) == before  # the lock file goes with its holder
    # a real second process: it holds the run while it trains, is killed, and the run resumes
    script = textwrap.dedent(f"""
        import sys
        import engine.training
        from engine.cli import main
        save = engine.training.Trainer._save
        def announce(self, path):
            save(self, path)
            print("saved", self.step, flush=True)
            sys.stdin.readline()  # hold the run until the test is done with it
        engine.training.Trainer._save = announce
        main(["--data-dir", {str(tmp_path)!r}, "train", "--data", "g.nc", "--out", "runs/a", "--model-size", "tiny",
              "--steps", "40", "--batch-size", "2", "--checkpoint-every", "3", "--device", "cpu"])
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        assert _line_starting("saved", holder.stdout) == "saved 3\n"
        line = _refused([*base, "train", "--data", "g.nc", "--out", "runs/a", *TINY], "in use by a training", capsys)
        assert f"pid {holder.pid}" in line
        _refused([*base, "export", "--checkpoint", "runs/a/checkpoint.pt", "--out", "e.pt"], "in use by", capsys)
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    assert main([*base, "train", "--data", "g.nc", "--out", "runs/a", *TINY[:2], "--steps", "5",
                 "--batch-size", "2"]) == 0
    assert "resuming an interrupted run at step 3 of 5" in capsys.readouterr().out


def test_a_training_job_on_a_run_in_use_fails_with_the_same_line(tmp_path):
    from engine.config import ModelConfig, TrainingConfig
    from engine.jobs import JobManager
    from engine.pipelines.train import TrainRequest

    _prepare(tmp_path)
    request = TrainRequest(data="g.nc", out="runs/a", model=ModelConfig(size="tiny"),
                           training=TrainingConfig(steps=4, batch_size=2, device="cpu"))
    with run_lock(tmp_path / "runs" / "a", "a training"):
        job = JobManager().submit(request, data_dir=str(tmp_path), threads=1)
        assert job.wait(120) and job.state == "failed"
    assert job.reason.startswith("runs/a is in use by a training (pid")


def test_names_that_look_like_temporaries_are_the_users_and_the_studio_s_own_are_refused(tmp_path, capsys):
    base = ["--data-dir", str(tmp_path)]
    _prepare(tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid whose process has ended
    names = [f".d.{dead.pid}.old/x.nc", f".g.nc.{dead.pid}.tmp.nc"]
    for name in names:
        assert main([*base, "data", "grf", "--size", "8", "--count", "2", "--out", name]) == 0
    assert main([*base, "train", "--data", "g.nc", "--out", f"runs/.r.{dead.pid}.tmp", *TINY]) == 0
    assert main([*base, "export", "--checkpoint", "runs/a/checkpoint.pt", "--out", f".e.{dead.pid}.tmp"]) == 0
    before = _contents(tmp_path)
    assert main([*base, "data", "list"]) == 0
    assert _contents(tmp_path) == before  # none of them deleted as a dead writer's leftover
    for args in (["data", "grf", "--size", "8", "--out", f"{SCRATCH}/x.nc"],
                 ["train", "--data", "g.nc", "--out", f"runs/{SCRATCH}", *TINY],
                 ["export", "--checkpoint", "runs/a/checkpoint.pt", "--out", f"runs/a/{LOCK}"]):
        _refused([*base, *args], "is kept for the studio's own files", capsys)
    assert _contents(tmp_path) == before


KILLED_WRITE = """
import os, sys
import engine.files
from engine.cli import main
replace = os.replace
def stop_before_the_rename(source, target):
    if engine.files.SCRATCH in str(source):
        print("writing", flush=True)
        sys.stdin.readline()  # killed here: the temporary is whole, the target not yet replaced
    replace(source, target)
engine.files.os.replace = stop_before_the_rename
main(sys.argv[1:])
"""


@pytest.mark.parametrize("command", [
    ["data", "grf", "--size", "16", "--count", "8", "--seed", "5", "--out", "g.nc", "--overwrite"],
    ["train", "--data", "g.nc", "--out", "runs/a", "--model-size", "tiny", "--steps", "4", "--batch-size", "2"],
    ["export", "--checkpoint", "runs/a/checkpoint.pt", "--out", "e.pt"]], ids=["dataset", "checkpoint", "export"])
def test_kill_9_during_a_write_leaves_a_folder_that_lists_cleanly_and_every_earlier_file_loadable(tmp_path, capsys,
                                                                                                  command):
    base = ["--data-dir", str(tmp_path)]
    _prepare(tmp_path)
    before = _contents(tmp_path)
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITE, *base, *command], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert _line_starting("writing", writer.stdout) == "writing\n"
    writer.kill()
    writer.wait()
    assert list(tmp_path.rglob(f"{SCRATCH}/*"))  # the dead writer's whole temporary, not yet renamed
    capsys.readouterr()
    assert main([*base, "data", "list"]) == 0  # opening the folder removes it
    assert capsys.readouterr().err == ""
    assert _contents(tmp_path) == {key: value for key, value in before.items()}
    assert main([*base, "sample", "--data", "g.nc", "--model", "unet", "--model-size", "tiny", "--checkpoint",
                 "runs/a/checkpoint.pt", "--steps", "2", "--count", "2", "--device", "cpu"]) == 0


def test_a_folder_that_vanishes_while_the_data_folder_is_walked_is_skipped(tmp_path):
    """Another writer's private folder can go between being listed and being read (found by a cluster rollout
    whose client removed its temporary store while a worker opened the folder): the walk skips it."""
    import shutil

    from engine.files import walk

    (tmp_path / "a" / SCRATCH).mkdir(parents=True)
    (tmp_path / "b").mkdir()
    walker = walk(tmp_path)
    assert next(walker)[0] == tmp_path  # the root is listed, with a/ in it
    shutil.rmtree(tmp_path / "a")
    assert [folder.name for folder, _, _ in walker] == ["b"]
