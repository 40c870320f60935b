"""Where computations run: the device a job asks for, and the CPU threads a worker process may use.

See docs/architecture.md for where this sits among the layers.
"""
from __future__ import annotations

import os

import torch

from engine.errors import EngineError

DEVICE_CHOICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "float32", "bfloat16")


def resolve_device(choice: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; asking for CUDA without it is an error."""
    if choice not in DEVICE_CHOICES:
        raise EngineError(f"device must be one of {', '.join(DEVICE_CHOICES)}, not {choice!r}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise EngineError("device 'cuda' was asked for, but no CUDA device is available")
    return torch.device("cuda" if choice in ("auto", "cuda") and torch.cuda.is_available() else "cpu")


def job_cores() -> int:
    """Cores the jobs of one server share: every core but one (the caller stays responsive)."""
    return max(1, (os.cpu_count() or 2) - 1)


def worker_threads(requested: int | None = None) -> int:
    """Intra-op threads for a worker: ``requested`` (at most ``job_cores()``), else ``job_cores()``."""
    return min(requested, job_cores()) if requested else job_cores()


def available_memory(device: torch.device) -> int:
    """Bytes a job may still allocate: the GPU's free memory, or the host's MemAvailable (Linux), else its
    physical memory."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(*, required: float, what: str, device: torch.device | str = "cpu", fix: str) -> None:
    """Refuse, before anything is allocated, work estimated to need more than 80% of the available memory."""
    device = torch.device(device)
    available = available_memory(device)
    if required > 0.8 * available:
        raise EngineError(f"{what} needs about {required / 2**30:.1f} GiB; {device.type} has "
                          f"{available / 2**30:.1f} GiB available: {fix}")


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype of a network's forward: ``auto`` is bfloat16 on CUDA and full float32 on CPU."""
    if precision not in PRECISIONS:
        raise EngineError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "bfloat16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


class Accelerated(torch.nn.Module):
    """A network's forward under bf16 autocast (when asked), with 4-D inputs and weights in channels-last layout on CUDA
    (what tensor cores read fastest; ``channels_last`` overrides it: ``benchmarks/training.py`` measures both on each
    device); outputs (a tensor or a tuple of them) come back in float32."""

    def __init__(self, net: torch.nn.Module, device: torch.device, precision: str, channels_last: bool | None = None):
        super().__init__()
        self.net, self.device_type, self.dtype = net, device.type, autocast_dtype(device, precision)
        self.channels_last = device.type == "cuda" if channels_last is None else channels_last
        if self.channels_last:
            net.to(memory_format=torch.channels_last)  # 4-D weights only; the net's own tensors, in place

    def forward(self, x: torch.Tensor, *args):
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device_type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            out = self.net(x, *args)
        return tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()


def accelerate(net: torch.nn.Module, device: torch.device, precision: str, compile: bool) -> torch.nn.Module:
    """``net`` as a sampler runs it: under ``precision`` (``Accelerated``), through ``torch.compile`` if asked."""
    runner = Accelerated(net, device, precision)
    return torch.compile(runner) if compile else runner
