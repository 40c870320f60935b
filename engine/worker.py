"""What runs inside a job's worker process: the request rebuilt from its plain values and run, its events made
small (``preview``) and rate-limited (``throttled``) on their way back, exactly one final event, and the helper
ranks of a data-parallel training. The caller's side (``engine.jobs``) starts these processes and follows them.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from engine.data.store import DataStore
from engine.devices import worker_threads
from engine.distributed import local_rank_environment
from engine.errors import EngineError
from engine.pipelines.generate_data import DataRequest
from engine.pipelines.rollout import RolloutRequest
from engine.pipelines.sample import SampleRequest
from engine.pipelines.superres import SuperresRequest
from engine.pipelines.train import TrainRequest
from engine.process import keep_freed_memory
from engine.spectral import radial_spectrum

MIN_EVENT_SECONDS = 1 / 40  # at most 40 progress events per second per job: a step of ≥ 25 ms is sent every time, so a
# rollout at ~30 steps/s fills a 30 frames/s view (1/30 would send every second step of a 32 ms rollout: ~16 fps)
PREVIEW_SIZE = 128  # previews larger than this are block-averaged down


class Cancelled(Exception):
    """Raised inside a worker when its job was cancelled."""


def preview(field) -> np.ndarray:
    """A float32 numpy copy of a field, block-averaged to at most PREVIEW_SIZE² (cheap to send and draw)."""
    array = np.asarray(field.detach().cpu() if hasattr(field, "detach") else field, dtype=np.float32)
    factor = max(1, array.shape[-1] // PREVIEW_SIZE)
    if factor > 1:
        n = array.shape[-1] // factor
        array = array[..., : n * factor, : n * factor].reshape(*array.shape[:-2], n, factor, n, factor).mean((-3, -1))
    return array


REQUESTS = {request.command: request for request in (TrainRequest, SampleRequest, DataRequest, RolloutRequest,
                                                     SuperresRequest)}


def cancellable(emit: Callable, should_stop: Callable) -> Callable[[dict], None]:
    """A progress callback that raises ``Cancelled`` once the job is cancelled, and emits otherwise."""
    def report(event: dict) -> None:
        if should_stop():
            raise Cancelled
        emit(event)

    return report


def _train(request: TrainRequest, store: DataStore, emit: Callable, should_stop: Callable) -> dict:
    def report(event: dict) -> None:
        emit({**event, "field": preview(event["field"])} if event["kind"] == "preview" else event)

    result = request.run(store=store, callback=report, should_stop=should_stop)
    return {"checkpoint": str(result.checkpoint), "step": result.step, "history": result.history}


def _sample(request: SampleRequest, store: DataStore, emit: Callable, should_stop: Callable) -> dict:
    report = cancellable(emit, should_stop)

    def step(event: dict) -> None:
        report({"kind": "progress", "step": event["step"], "steps": request.sampler.steps,
                "preview": preview(event["x"][0])})

    result = request.run(store=store, callback=step)
    samples = result.generated.samples
    return {"nfe": result.generated.nfe, "seconds": result.generated.seconds, **result.generated.errors,
            "samples": preview(samples[:4]), "spectrum": radial_spectrum(samples).numpy()}


def _data(request: DataRequest, store: DataStore, emit: Callable, should_stop: Callable) -> dict:
    return {"name": request.run(store=store, callback=cancellable(emit, should_stop)).name}


def _rollout(request: RolloutRequest, store: DataStore, emit: Callable, should_stop: Callable) -> dict:
    def progress(event: dict) -> None:
        truth = event["truth"]
        emit({**event, "preview": preview(event["preview"]), "spectrum": event["spectrum"].numpy(),
              "truth": None if truth is None else preview(truth)})

    result = request.run(store=store, callback=progress, should_stop=should_stop)
    if result.rollout.reason == "stopped":
        raise Cancelled
    return {**result.summary, "spectra": result.rollout.spectra.numpy()}


def _superres(request: SuperresRequest, store: DataStore, emit: Callable, should_stop: Callable) -> dict:
    report = cancellable(emit, should_stop)

    def progress(event: dict) -> None:
        report({"kind": "progress", "step": event["step"], "steps": event["steps"], "lam": event["lam"],
                "preview": event["frame"]})  # the worker's emit throttles; preview() copies only what is sent

    result = request.run(store=store, callback=progress)
    return {**result.summary, **{f"{key}_field": preview(frame) for key, frame in result.frames.items()}}


RUNNERS = {"train": _train, "sample": _sample, "data": _data, "rollout": _rollout, "superres": _superres}


def exit_with_parent(poll_seconds: float = 1.0) -> None:
    """End this worker once the process that started it is gone (a server killed by a signal runs no cleanup, and
    its workers would go on computing for nobody): a daemon thread polls the parent's pid."""
    parent = mp.parent_process()  # the pid that started us, even if it died while we were importing
    if parent is None:
        return

    def watch() -> None:
        while os.getppid() == parent.pid:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


@dataclass(frozen=True)
class Placement:
    """Where a job runs, apart from what it does: the data folder, its intra-op threads (None: the default share
    of the cores), how many local processes train it, and the rendezvous port of their world (set on start)."""

    data_dir: str | None = None
    threads: int | None = None
    nproc: int = 1
    port: int | None = None

    @property
    def rank_threads(self) -> int:
        """Intra-op threads of each of the job's processes: its threads shared by its ranks (at least 1)."""
        return max(1, worker_threads(self.threads) // self.nproc)

    def join_world(self, rank: int) -> None:
        """Set torchrun's variables for ``rank`` of the job's local world (before any process group starts)."""
        if self.port is not None:
            os.environ.update(local_rank_environment(rank=rank, size=self.nproc, port=self.port))


def helper_rank(values: dict, placement: Placement, rank: int) -> None:
    """Process entry point of rank ``rank`` ≥ 1 of a data-parallel training job: train, report nothing (rank 0
    does); a failure ends the process with a non-zero code, which fails the job."""
    exit_with_parent()
    torch.set_num_threads(placement.rank_threads)
    placement.join_world(rank)
    TrainRequest.from_options(values).run(store=DataStore(placement.data_dir))
    # done: leave without the interpreter's teardown, where a gloo thread still alive at C++ static destruction
    # aborts the process (SIGABRT, exit code −6, seen once in four busy CI runs) after the job has finished well
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def throttled(put: Callable[[dict], None], clock: Callable[[], float] = time.monotonic,
              interval: float = MIN_EVENT_SECONDS) -> Callable[[dict], None]:
    """``put`` for every event but progress, which passes at most once per ``interval`` of ``clock`` (its preview
    made small first); the rest of the progress events are dropped, not delayed."""
    last = [-float("inf")]

    def emit(event: dict) -> None:
        now = clock()
        if event.get("kind") != "progress" or now - last[0] >= interval:
            last[0] = now
            if event.get("kind") == "progress" and "preview" in event:
                event = {**event, "preview": preview(event["preview"])}
            put(event)

    return emit


def run_worker(kind: str, values: dict, placement: Placement, events, cancel) -> None:
    """Process entry point: run the job's request, stream throttled events, end with exactly one final event."""
    exit_with_parent()
    keep_freed_memory()
    # leave a core to the caller (the dashboard server stays responsive); oversubscribed OpenMP threads spin
    torch.set_num_threads(placement.rank_threads)
    placement.join_world(0)
    emit = throttled(events.put)
    try:
        request = REQUESTS[kind].from_options(values)
        result = RUNNERS[kind](request, DataStore(placement.data_dir), emit, cancel.is_set)
        cancelled = {"kind": "cancelled", "reason": "cancelled"}
        events.put(cancelled if cancel.is_set() else {"kind": "done", "result": result})
    except Cancelled:
        events.put({"kind": "cancelled", "reason": "cancelled"})
    except Exception as err:  # every failure ends the job with its reason; the caller keeps running
        reason = str(err) if isinstance(err, EngineError) else f"{type(err).__name__}: {err}"
        events.put({"kind": "failed", "reason": reason, "refused": isinstance(err, EngineError)})


