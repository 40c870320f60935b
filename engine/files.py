"""Writing files without losing any: a disk check before the work, whole files written from memory and renamed
into place, temporaries in a private folder of their own, one writer per run folder.

Every temporary lives in a ``.emulator-studio-tmp`` folder beside its target, named ``<pid>-<token>-<name>``:
no user name may take that folder (``DataStore.path`` refuses it), so cleanup removes only what a writer of this
code made there and left behind when it died. netCDF and checkpoints are serialized to memory first and written
with plain ``write`` calls: a full disk is then an ``OSError`` we catch, where the HDF5 library writing to the
disk itself aborts in native code (signal 11) on ``ENOSPC``.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Callable, Iterator

from engine.errors import EngineError

SCRATCH = ".emulator-studio-tmp"  # the private folder of temporaries beside a target
LOCK = ".emulator-studio-lock"  # a run folder's lock file (flock: released when its holder dies)
RESERVED = (SCRATCH, LOCK)  # names no user path may use
MARGIN = 2**20  # bytes kept free beyond an output's estimate (file metadata, the filesystem's own blocks)
SCRATCH_ENTRY = re.compile(r"^(\d+)-[0-9a-f]{8}-")  # <pid>-<token>-<name>
CHUNK = 2**24  # bytes per write call


def mib(size: float) -> str:
    return f"{size / 2**20:.1f} MiB"


def existing_folder(path: Path) -> Path:
    """The nearest folder of ``path`` (itself or an ancestor) that exists: where a new file would be created."""
    folder = path if path.is_dir() else path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def free_bytes(folder: Path) -> int:
    """Bytes this user may still write on ``folder``'s file system."""
    return shutil.disk_usage(folder).free


def check_writable(path: str | Path, *, need: float = 0.0, what: str) -> None:
    """Refuse, before any work starts, an output ``what`` at ``path`` whose folder cannot be written or lacks
    ``need`` bytes (plus a 1 MiB margin) of free space (0: no estimate, the folder alone is checked)."""
    folder = existing_folder(Path(path))
    if not os.access(folder, os.W_OK | os.X_OK):
        read_only = os.statvfs(folder).f_flag & os.ST_RDONLY
        reason = "it is on a read-only file system" if read_only else "this user may not write there"
        raise EngineError(f"cannot write {what} in {folder}: {reason}; choose another data folder")
    free = free_bytes(folder)
    if need and need + MARGIN > free:
        raise EngineError(f"{what} needs about {mib(need)} in {folder}, which has {mib(free)} free: free some space "
                          "or choose another data folder")


@contextlib.contextmanager
def disk_errors(target: Path) -> Iterator[None]:
    """Turn an operating system's refusal while writing ``target`` (a full disk, a read-only folder, a lost
    permission) into one line; whatever stood at ``target`` before is left as it was."""
    try:
        yield
    except OSError as err:
        folder = existing_folder(target.parent)
        reason = os.strerror(err.errno) if err.errno else str(err).splitlines()[0]
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            reason += f" ({mib(free_bytes(folder))} free)"
        raise EngineError(f"could not write {target.name} in {folder}: {reason}; nothing was changed") from None


def scratch_folder(target: Path) -> Path:
    """The private folder of temporaries beside ``target`` (made when missing)."""
    folder = target.parent / SCRATCH
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):  # gone already, or a read-only folder
            path.unlink()


def _tidy(folder: Path) -> None:
    """Remove the private folder once nothing is left in it (another writer's entry keeps it)."""
    with contextlib.suppress(OSError):
        folder.rmdir()


def scratch_path(target: Path) -> Path:
    """A fresh temporary path for ``target`` in its private folder (nothing is made there yet)."""
    return scratch_folder(target) / f"{os.getpid()}-{secrets.token_hex(4)}-{target.name}"


def discard(path: Path) -> None:
    """Remove a temporary (file or folder), and its private folder once that is empty."""
    _remove(path)
    _tidy(path.parent)


@contextlib.contextmanager
def scratch(target: Path) -> Iterator[Path]:
    """A temporary path for ``target`` in its private folder, removed on the way out whatever happened."""
    path = scratch_path(target)
    try:
        yield path
    finally:
        discard(path)


def write_bytes(target: str | Path, payload: bytes | memoryview) -> Path:
    """Write ``payload`` as ``target`` atomically: into a temporary (after a free-space check for its exact size),
    flushed to the disk, then renamed over ``target``."""
    target = Path(target)
    with disk_errors(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        view = memoryview(payload).cast("B")
        check_writable(target.parent, need=view.nbytes, what=target.name)
        with scratch(target) as tmp:
            write_all(tmp, view)
            os.replace(tmp, target)
    return target


def write_all(path: Path, view: memoryview) -> None:
    """Write ``view`` into the new file ``path`` in 16 MiB calls and flush it to the disk."""
    with open(path, "wb") as file:
        for start in range(0, view.nbytes, CHUNK):
            file.write(view[start:start + CHUNK])
        file.flush()
        os.fsync(file.fileno())


def write_tree(target: str | Path, write: Callable[[Path], None]) -> Path:
    """Make the folder ``target`` (a zarr store) atomically: ``write(tmp)`` fills a temporary folder, which then
    takes ``target``'s place; an earlier ``target`` is moved aside first and removed only once the new one is in."""
    target = Path(target)
    with disk_errors(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        with scratch(target) as tmp, scratch(target) as old:
            write(tmp)
            if target.exists():
                os.replace(target, old)
            try:
                os.replace(tmp, target)
            except OSError:
                if old.exists():
                    os.replace(old, target)
                raise
    return target


def copy_file(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` atomically (a copy killed half-way leaves no half file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with disk_errors(target):
        check_writable(target.parent, need=source.stat().st_size, what=target.name)
        with scratch(target) as tmp:
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
    return target


def writer_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (its temporary files are then in use)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def walk(root: Path):
    """``os.walk`` of ``root``, links not followed and a folder that vanishes meanwhile (another writer's private
    folder, say) skipped: (folder, its sub-folder names, its file names) for each folder."""
    for folder, folders, files in os.walk(root):  # errors (a folder gone since it was listed) are skipped
        yield Path(folder), folders, files


def remove_stale_temporaries(root: Path) -> list[Path]:
    """Delete what writers killed mid-write left in the private folders under ``root`` (their pid is gone) and
    run locks that no process holds; nothing else is ever touched. Returns what was removed."""
    removed = []
    for folder, folders, files in walk(root):
        if LOCK in files and _remove_unheld(folder / LOCK):
            removed.append(folder / LOCK)
        if SCRATCH in folders:
            folders.remove(SCRATCH)  # handled here, not walked into
            removed += _remove_dead_entries(folder / SCRATCH)
    return removed


def _remove_dead_entries(scratch: Path) -> list[Path]:
    """The entries of one private folder whose writer is gone, removed (and the folder, once empty)."""
    removed = []
    with contextlib.suppress(OSError):  # gone meanwhile
        for path in list(scratch.iterdir()):
            match = SCRATCH_ENTRY.match(path.name)
            if match and not writer_alive(int(match.group(1))):
                _remove(path)
                removed.append(path)
    _tidy(scratch)
    return removed


def _remove_unheld(lock: Path) -> bool:
    """Remove the lock file ``lock`` if no process holds it (its holder died); whether it was removed."""
    with contextlib.suppress(OSError):
        fd = _acquire(lock)
        if fd >= 0:
            lock.unlink()
            os.close(fd)
            return True
    return False


def _holder(lock: Path) -> str:
    """Who holds ``lock``, as its holder wrote it (``training (pid 123, since 21:04:05)``)."""
    with contextlib.suppress(OSError):
        return lock.read_text().strip() or "another process"
    return "another process"


def _acquire(lock: Path) -> int:
    """An open descriptor of ``lock`` holding its exclusive flock, or -1 when another process holds it. The path
    must still name the locked file afterwards (a releasing holder unlinks it), else it is tried again."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return -1
        with contextlib.suppress(FileNotFoundError):
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                return fd
        os.close(fd)


@contextlib.contextmanager
def run_lock(folder: str | Path, what: str) -> Iterator[None]:
    """Hold the run folder ``folder`` for one writer (``what``: training, export): a second one is refused in one
    line naming the first. An OS lock, so a killed holder releases it; a folder this made and left empty is
    removed again on the way out."""
    folder = Path(folder)
    made = [path for path in (folder, *folder.parents) if not path.exists()]  # folders this makes, deepest first
    check_writable(folder, what=f"the run {folder.name}")
    with disk_errors(folder / LOCK):
        folder.mkdir(parents=True, exist_ok=True)
        lock = folder / LOCK
        fd = _acquire(lock)
    if fd < 0:
        for path in made:
            _tidy(path)
        raise EngineError(f"{folder.parent.name}/{folder.name} is in use by {_holder(lock)}; wait for it to end or use "
                          "another run folder")
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{what} (pid {os.getpid()}, since {time.strftime('%H:%M:%S')})".encode())
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)
        for path in made:
            _tidy(path)
