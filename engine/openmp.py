"""How idle OpenMP threads wait, set before torch loads in a process: sleeping, not spinning.

Spinning threads of several processes fight over the cores: on 2 cores a solver beside a training job kept 3% of
its speed with spinning threads and all of it with sleeping ones (benchmarks/contention.py; the README quotes the
table). Job workers inherit this environment; ``python -m engine`` sets it for itself. Imports nothing heavy.
"""
from __future__ import annotations

import os

SLEEPING_THREADS = {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "0", "KMP_BLOCKTIME": "0"}


def sleep_when_idle() -> None:
    """Put ``SLEEPING_THREADS`` in this process's environment (for itself if torch has not loaded yet, and for
    the processes it spawns); settings the user made already win."""
    for name, value in SLEEPING_THREADS.items():
        os.environ.setdefault(name, value)
