"""Data-parallel training across processes: the world ``torchrun`` (or a local launch) sets up, joined through
PyTorch's own ``torch.distributed`` (``env://`` rendezvous: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT).

Every rank draws the same global batch from the same seeded generator and trains on its own contiguous share of
it; DistributedDataParallel averages the gradients, so a step on N processes is the step one process takes on the
global batch (up to the order of floating-point sums), and a run resumes with any world size. ``gloo`` on CPU,
``nccl`` on CUDA. See docs/architecture.md for the layers and docs/scaling.md for the commands.
"""
from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from engine.errors import EngineError

TIMEOUT = timedelta(minutes=10)  # a rank that waits this long for the others fails instead of hanging


@dataclass(frozen=True)
class World:
    """This process's place among the training processes: ``rank`` of ``size``, ``local_rank`` on its node."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints and reports progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def device(self, device: torch.device) -> torch.device:
        """The device of this rank: ``cuda:LOCAL_RANK`` when training on CUDA, else ``device``."""
        return torch.device("cuda", self.local_rank) if device.type == "cuda" and self.distributed else device

    def share(self, batch: tuple) -> tuple:
        """This rank's contiguous ``1/size`` of every tensor in a global batch (``None`` entries pass through)."""
        if not self.distributed:
            return batch
        return tuple(None if x is None else x.chunk(self.size)[self.rank] for x in batch)

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of ``value`` over the ranks (the global batch's loss from each share's)."""
        if self.distributed:
            value = value.clone()
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
            value /= self.size
        return value

    def agree(self, flag: bool, device: torch.device) -> bool:
        """Rank 0's ``flag`` on every rank (a stop asked of rank 0 stops them all at the same step)."""
        if not self.distributed:
            return flag
        value = torch.tensor([float(flag)], device=device)
        dist.broadcast(value, src=0)
        return bool(value.item())


def world_from_environment() -> World:
    """The world described by torchrun's variables (a single process when WORLD_SIZE is unset or 1)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as err:
        raise EngineError(f"WORLD_SIZE, RANK and LOCAL_RANK must be integers: {err}") from None
    if size < 1 or not 0 <= rank < size:
        raise EngineError(f"RANK {rank} does not fit WORLD_SIZE {size}")
    return World(rank, size, local_rank)


@contextmanager
def joined(device: torch.device):
    """Join the process group of torchrun's world for the duration (``nccl`` on CUDA, ``gloo`` on CPU); yields the
    ``World``. A single process joins nothing."""
    if dist.is_initialized():  # the caller's own process group: use it, leave it
        yield World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_backend())
        return
    world = world_from_environment()
    if not world.distributed:
        yield world
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl":
        if world.local_rank >= torch.cuda.device_count():
            raise EngineError(f"LOCAL_RANK {world.local_rank} has no GPU: this node has {torch.cuda.device_count()}; "
                              "start at most one process per GPU (--nproc-per-node)")
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(backend, timeout=TIMEOUT)
    try:
        yield World(world.rank, world.size, world.local_rank, backend)
        dist.barrier()  # every rank is done before any tears down: rank 0 hosts the store the others still use
    finally:
        dist.destroy_process_group()


def max_local_processes() -> int:
    """Data-parallel processes one host can run: one per GPU, else one per CPU core."""
    return torch.cuda.device_count() or os.cpu_count() or 1


def free_port() -> int:
    """A TCP port free on this host now, for a local rendezvous (MASTER_PORT)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def local_rank_environment(*, rank: int, size: int, port: int) -> dict[str, str]:
    """torchrun's variables for rank ``rank`` of ``size`` processes on this host."""
    return {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(size), "LOCAL_WORLD_SIZE": str(size),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}

