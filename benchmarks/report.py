"""A benchmark's table into docs/benchmarks.md, stamped with the date, the commit and the machine it was measured on.

Every script takes ``--write-docs``: ``publish(name, command, table)`` replaces the part of docs/benchmarks.md
between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` (added at the end the first time), so a rerun rewrites
its own tables and nothing else. ``main_publishing(name, main)`` gives a script the flag without touching its own
parser: it runs ``main`` with the output also kept, and publishes the Markdown table lines it printed;
``--write-docs=TAG`` publishes under ``NAME-TAG``, so one script's runs with different arguments keep their own
blocks. The stamp is taken when the run starts (the commit it measured, not the one it ended beside).
"""
from __future__ import annotations

import io
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

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
    """The short commit of the working tree, marked when it has uncommitted changes (other than this page's)."""
    root = DOC.parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                f":!{DOC.relative_to(root)}"],  # the page itself: an earlier run's tables
                               cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' (with local changes)' if dirty else ''}"


def stamp_of(command: str) -> str:
    """The line that says when, at which commit and on which machine ``command`` was measured."""
    return f"Measured {time.strftime('%Y-%m-%d')} at commit {commit()} on {machine()}: `{command}`"


def publish(name: str, command: str, table: str, stamp: str | None = None) -> None:
    """Put ``table`` (Markdown) with its command and stamp into docs/benchmarks.md under the marker ``name``."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    stamp = stamp or stamp_of(command)
    block = f"{begin}\n{stamp}\n\n{table.strip()}\n{end}"
    text = DOC.read_text()
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + f"\n\n{block}\n"
    DOC.write_text(text)


class _Tee(io.TextIOBase):
    """Writes to the terminal and keeps a copy."""

    def __init__(self, terminal):
        self.terminal, self.kept = terminal, io.StringIO()

    def write(self, text: str) -> int:
        self.kept.write(text)
        return self.terminal.write(text)

    def flush(self) -> None:
        self.terminal.flush()


def tables(text: str) -> str:
    """The Markdown table lines of a script's output, a blank line between tables."""
    out, previous = [], False
    for line in text.splitlines():
        row = line.startswith("|")
        if row and not previous and out:
            out.append("")
        if row:
            out.append(line)
        previous = row
    return "\n".join(out)


def main_publishing(name: str, main: Callable[[], None]) -> None:
    """Run a benchmark's ``main``; with ``--write-docs[=TAG]`` on the command line, publish the tables it printed."""
    flags = [arg for arg in sys.argv[1:] if arg == "--write-docs" or arg.startswith("--write-docs=")]
    if not flags:
        main()
        return
    for flag in flags:
        sys.argv.remove(flag)
    tag = flags[-1].partition("=")[2]
    command = "python benchmarks/" + Path(sys.argv[0]).name + "".join(f" {arg}" for arg in sys.argv[1:])
    stamp = stamp_of(command)
    tee = sys.stdout = _Tee(sys.stdout)
    try:
        main()
    finally:
        sys.stdout = tee.terminal
    publish(f"{name}-{tag}" if tag else name, command, tables(tee.kept.getvalue()), stamp)
