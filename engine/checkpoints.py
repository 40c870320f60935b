"""Atomic checkpoint files: written to a temporary name and renamed, read with ``weights_only=True``."""
from __future__ import annotations

import contextlib
import functools
import io
import os
import re
from pathlib import Path

import torch

from engine.errors import EngineError
from engine.files import check_writable, run_lock, write_bytes

FORMAT = "emulator-studio/drift-v1"
CHECKPOINT_NAME = "checkpoint.pt"  # a run folder's checkpoint
SEED_FOLDER = re.compile(r"seed-(\d+)")  # a group's member run folder (train --seeds)


def save_checkpoint(payload: dict, path: str | Path) -> Path:
    """``torch.save`` into memory, then written atomically (``engine.files.write_bytes``): a reader never sees half
    a file, and a full disk is one line with the earlier checkpoint intact."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buffer)
    return write_bytes(path, buffer.getbuffer())


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """Load a checkpoint safely (tensors and plain Python values only) and check its format."""
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"no such checkpoint: {path}")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or foreign files
        first_line = (str(err).splitlines() or [""])[0]
        raise EngineError(f"{path}: not a readable checkpoint ({type(err).__name__}: {first_line})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise EngineError(f"{path}: not an Emulator Studio drift checkpoint (format {FORMAT})")
    return payload


INFERENCE_KEYS = ("task", "configs", "data", "ema_state", "step", "history", "engine_version")


def export_checkpoint(source: str | Path, target: str | Path) -> Path:
    """An inference-only copy: the EMA weights, configs, data statistics and loss history, without the optimizer
    and RNG state (about a third of the size); it samples and rolls out, but cannot resume training. A run's own
    checkpoint is exported holding the run's lock (never while it trains)."""
    source = Path(source)
    in_run = source.name == CHECKPOINT_NAME and os.access(source.parent, os.W_OK)  # a read-only run trains never
    held = run_lock(source.parent, "an export") if in_run else contextlib.nullcontext()
    with held:
        state = load_checkpoint(source)
        check_writable(Path(target), need=source.stat().st_size, what=Path(target).name)
        return save_checkpoint({key: state[key] for key in INFERENCE_KEYS if key in state} | {"exported": True},
                               target)


def list_runs(root: Path) -> list[dict]:
    """Every run folder ``root/runs/*`` with a readable checkpoint: run name, path (relative to ``root``), task,
    step, last loss, model size, the data it was trained on (its name, grid n, Δt and variables); unreadable
    checkpoints are skipped. Each checkpoint is read once per version (its inode, modification time and size:
    ``save_checkpoint`` replaces the file by a new one), so listing again costs a ``stat`` per run."""
    rows = []
    for path in sorted((root / "runs").glob("*/checkpoint.pt")):
        summary = _summary_now(path)
        if summary is not None:
            rows.append({"run": path.parent.name, "path": str(path.relative_to(root)), **summary})
    return rows


def list_groups(root: Path) -> list[dict]:
    """Every group of runs ``root/runs/*`` (``train --seeds``): its folder as ``path`` (relative to ``root``), its
    first member's ``list_runs`` summary and ``seeds``, the number of members with a readable checkpoint."""
    rows = []
    for folder in sorted(path for path in (root / "runs").glob("*") if path.is_dir()):
        members = group_members(folder)
        summary = _summary_now(members[0]) if members else None
        if summary is not None:
            rows.append({"run": folder.name, "path": str(folder.relative_to(root)), **summary, "seeds": len(members)})
    return rows


def _summary_now(path: Path) -> dict | None:
    """``_run_summary`` of the checkpoint at ``path`` as it is now (None when it was removed since it was found)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return _run_summary(str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)


def group_members(folder: Path) -> list[Path]:
    """The checkpoints of the members of the group at ``folder``, by member index (empty when it is no group)."""
    if not folder.is_dir():
        return []
    found = [(int(match.group(1)), path / CHECKPOINT_NAME) for path in folder.iterdir()
             if (match := SEED_FOLDER.fullmatch(path.name)) and (path / CHECKPOINT_NAME).is_file()]
    return [path for _, path in sorted(found)]


@functools.lru_cache(maxsize=1024)
def _run_summary(path: str, inode: int, mtime_ns: int, size: int) -> dict | None:
    """Task, step, last loss, model size and data (its grid's dimensions ``ndim``: 2 for fields, 1 for Lorenz-96) of
    the checkpoint at ``path`` in the version (``inode``, ``mtime_ns``, ``size``), or None if it is not a readable
    checkpoint."""
    try:
        state = load_checkpoint(path)
    except EngineError:
        return None
    history = state.get("history") or [[0, float("nan")]]
    data = state["data"]
    return {"task": state.get("task", "generate"), "step": state["step"], "loss": round(float(history[-1][1]), 5),
            "model": state["configs"]["model"]["size"], "data": data.get("source", ""), "n": data.get("n"),
            "dt": data.get("dt"), "ndim": data.get("ndim", 2), "variables": list(trained_variables(data) or ())}


def trained_variables(data: dict) -> tuple[str, ...] | None:
    """The variables a checkpoint's ``data`` record says it was trained on: ``variables`` (a state of several
    fields), else its one ``variable``; None when it names none."""
    names = data.get("variables") or ([data["variable"]] if data.get("variable") else [])
    return tuple(names) or None


def run_settings(state: dict) -> dict[str, object]:
    """A checkpoint's configs flattened to ``{"training.lr": 0.001, "model.size": "tiny", …}``, plus its task and
    data (by name)."""
    flat = {"task": state.get("task", "generate"), "data": state.get("data", {}).get("source", "")}
    for group, values in sorted(state.get("configs", {}).items()):
        flat.update({f"{group}.{key}": value for key, value in sorted(values.items())})
    return flat


def settings_diff(settings: dict[str, dict]) -> dict[str, dict]:
    """Of several runs' ``run_settings`` (by run name), only the settings whose values differ between them:
    ``{setting: {run: value}}`` (a setting a run lacks reads as None)."""
    keys = sorted({key for values in settings.values() for key in values})
    table = {key: {run: values.get(key) for run, values in settings.items()} for key in keys}
    return {key: row for key, row in table.items() if len({repr(value) for value in row.values()}) > 1}
