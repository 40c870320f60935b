"""A benchmark's table into docs/benchmarks.md, stamped with the date, the commit and the machine it was measured on.

A script that takes ``--write-docs`` calls ``publish(name, command, table)``: the part of docs/benchmarks.md between
``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` is replaced (added at the end the first time), so a rerun
rewrites its own table and nothing else.
"""
from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def machine() -> str:
    """The CPU model and core count (and the GPU, where torch sees one)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            model = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores"


def commit() -> str:
    """The short commit of the working tree, marked when it has uncommitted changes."""
    root = DOC.parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' (with local changes)' if dirty else ''}"


def publish(name: str, command: str, table: str) -> None:
    """Put ``table`` (Markdown) with its command and stamp into docs/benchmarks.md under the marker ``name``."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    stamp = f"Measured {time.strftime('%Y-%m-%d')} at commit {commit()} on {machine()}: `{command}`"
    block = f"{begin}\n{stamp}\n\n{table.strip()}\n{end}"
    text = DOC.read_text()
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + f"\n\n{block}\n"
    DOC.write_text(text)
