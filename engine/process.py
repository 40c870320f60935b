"""Process-level settings for engine processes (the CLI, job workers), applied before the work starts.

Idle OpenMP threads sleep rather than spin (set before torch loads): spinning threads of several processes fight over
the cores: on 2 cores a solver beside a training job kept 3% of its speed with spinning threads and all of it with
sleeping ones (benchmarks/contention.py; docs/benchmarks.md quotes the table). Job workers inherit this environment;
``python -m engine`` sets it for itself. And glibc keeps freed memory for reuse (``keep_freed_memory``). Imports
nothing heavy.
"""
from __future__ import annotations

import ctypes
import functools
import os

SLEEPING_THREADS = {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "0", "KMP_BLOCKTIME": "0"}
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters


def sleep_when_idle() -> None:
    """Put ``SLEEPING_THREADS`` in this process's environment (for itself if torch has not loaded yet, and for
    the processes it spawns); settings the user made already win."""
    for name, value in SLEEPING_THREADS.items():
        os.environ.setdefault(name, value)


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks (up to 1 GiB) for reuse instead of unmapping them (Linux; a no-op elsewhere).

    Solver steps and network evaluations free and reallocate MB-sized tensors; by default glibc hands them back to
    the OS and takes page faults to get them again: batch-16 Kolmogorov stepping ran 3–4× slower, and sampling a tiny
    64² U-Net at batch 64 took 0.52 s per evaluation instead of 0.27 (2-core CPU).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 1 << 30) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        return False
