"""Where computations run: the device a job asks for, and the CPU threads a worker process may use.

See docs/architecture.md for where this sits among the layers.
"""
from __future__ import annotations

import os

import torch

from engine.errors import EngineError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(choice: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; asking for CUDA without it is an error."""
    if choice not in DEVICE_CHOICES:
        raise EngineError(f"device must be one of {', '.join(DEVICE_CHOICES)}, not {choice!r}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise EngineError("device 'cuda' was asked for, but no CUDA device is available")
    return torch.device("cuda" if choice in ("auto", "cuda") and torch.cuda.is_available() else "cpu")


def worker_threads(requested: int | None = None) -> int:
    """Intra-op threads for a worker: ``requested``, else every core but one (the caller stays responsive)."""
    return requested or max(1, (os.cpu_count() or 2) - 1)
