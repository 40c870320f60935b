"""Background jobs: the pipelines (``engine.pipelines``) run in worker processes, streaming events
(docs/architecture.md draws the path of a request).

A job runs in its own process (spawned; a crash there cannot take the caller down) and streams small event
dicts back through a queue: ``progress`` (step, loss or preview field and spectrum), ``checkpoint``, and one
final event whose kind is ``done`` (with a ``result``), ``cancelled`` or ``failed`` (with a ``reason``).
Progress events are rate-limited in the worker (``engine.worker``). ``cancel()`` sets a flag the worker
checks between steps; a worker that has not finished a second later is terminated. Jobs on a CUDA device
run one at a time per device; CPU jobs start while their threads fit in the cores left to jobs
(``devices.job_cores``) and wait, ``queued``, otherwise. Workers' OpenMP threads sleep instead of spinning when
idle, so jobs side by side keep most of their own speed. A training job writes atomic checkpoints, so the same
job submitted again after a kill resumes from the last one. A training job with ``"nproc": N`` runs data-parallel
on N local processes (``engine.distributed``): its worker is rank 0 (events, checkpoints), ranks 1…N−1 are
helper processes the manager starts, watches (one that dies fails the job) and ends with it.

A job runs one request (``engine.pipelines.request``: ``TrainRequest``, ``SampleRequest``, ``DataRequest``,
``RolloutRequest``, ``SuperresRequest``), the same the CLI builds from its flags; it crosses into the worker as
plain values (``request.options()``), with its ``Placement`` (data folder, threads, local processes).
"""
from __future__ import annotations

import itertools
import multiprocessing as mp
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from engine.devices import job_cores
from engine.distributed import free_port
from engine.errors import EngineError
from engine.pipelines.request import Request
from engine.process import sleep_when_idle
from engine.worker import REQUESTS, RUNNERS, Placement, helper_rank, run_worker

CANCEL_GRACE_SECONDS = 1.0
HELPER_EXIT_SECONDS = 60.0  # how long the helper ranks of a finished training job may take to exit
FINAL = ("done", "cancelled", "failed")


@dataclass
class Job:
    """A submitted job: its request, where it runs, its state, its events (numbered, the last ``MAX_EVENTS``
    kept), its result, and its processes once started."""

    id: int
    request: Request
    placement: Placement = field(default_factory=Placement)
    state: str = "queued"  # queued → running → done | cancelled | failed
    reason: str | None = None
    result: dict | None = None
    submitted: float = field(default_factory=time.time)
    finished: float | None = None
    events: deque = field(default_factory=lambda: deque(maxlen=Job.MAX_EVENTS))
    latest: dict = field(default_factory=dict)  # the newest event of each kind
    count: int = 0
    process: Any = None  # the worker (rank 0), once started
    helpers: list = field(default_factory=list)  # the helper ranks of a data-parallel training
    MAX_EVENTS = 2000

    def __post_init__(self):
        self.stop_requested = mp.get_context("spawn").Event()  # set by cancel(), read by the worker between steps
        self._done = threading.Event()

    @property
    def kind(self) -> str:
        return self.request.command

    def record(self, event: dict) -> None:
        self.count += 1
        event = {**event, "seq": self.count}
        self.events.append(event)
        self.latest[event["kind"]] = event
        if event["kind"] in FINAL:
            self.state, self.reason, self.result = event["kind"], event.get("reason"), event.get("result")
            self.finished = time.time()
            self._done.set()

    def events_since(self, seq: int) -> list[dict]:
        """Events numbered above ``seq`` still kept (a slow reader skips the oldest)."""
        return [e for e in list(self.events) if e["seq"] > seq]

    def cancel(self) -> None:
        self.stop_requested.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


class JobManager:
    """Starts jobs in worker processes and collects their events on a thread per job."""

    def __init__(self):
        sleep_when_idle()  # spawned workers copy this environment as they start
        self._context = mp.get_context("spawn")
        self._ids = itertools.count(1)
        self.jobs: dict[int, Job] = {}
        self._device_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._cores = threading.Condition(self._lock)  # CPU jobs wait here until their threads fit
        self._busy_cores = 0

    def submit(self, request: Request, *, data_dir: str | None = None, threads: int | None = None,
               nproc: int = 1) -> Job:
        """Start a job running ``request`` on the data folder ``data_dir``, with ``threads`` intra-op threads and
        (training only) ``nproc`` local processes."""
        if request.command not in RUNNERS or not isinstance(request, REQUESTS[request.command]):
            raise EngineError(f"a job runs one of {', '.join(RUNNERS)}, not {type(request).__name__}")
        if nproc != 1 and (request.command != "train" or not isinstance(nproc, int) or nproc < 1):
            raise EngineError(f"nproc must be a positive integer, and only training runs on several processes "
                              f"(got {nproc!r} for a {request.command} job)")
        job = Job(next(self._ids), request, Placement(data_dir=data_dir, threads=threads, nproc=nproc))
        with self._lock:
            self.jobs[job.id] = job
        threading.Thread(target=self._supervise, args=(job,), daemon=True, name=f"job-{job.id}").start()
        return job

    def _device_lock(self, request: Request) -> threading.Lock | None:
        """One lock per CUDA device: GPU jobs are serialized, CPU jobs are not."""
        if request.runs_on == "cpu" or not torch.cuda.is_available():
            return None
        with self._lock:
            return self._device_locks.setdefault("cuda:0", threading.Lock())

    def _supervise(self, job: Job) -> None:
        lock = self._device_lock(job.request)
        if lock is not None:
            lock.acquire()
        placement = job.placement
        threads = 0 if lock is not None else min(job_cores(), placement.rank_threads * placement.nproc)
        try:
            self._take_cores(job, threads)
            self._run(job)
        finally:
            self._release_cores(threads)
            if lock is not None:
                lock.release()

    def _take_cores(self, job: Job, threads: int) -> None:
        """Wait (the job stays ``queued``) until ``threads`` more fit in the cores left to jobs, or it is
        cancelled."""
        with self._cores:
            while self._busy_cores + threads > job_cores() and not job.stop_requested.is_set():
                self._cores.wait(timeout=0.1)
            self._busy_cores += threads

    def _release_cores(self, threads: int) -> None:
        with self._cores:
            self._busy_cores -= threads
            self._cores.notify_all()

    def _run(self, job: Job) -> None:
        if job.stop_requested.is_set():
            job.record({"kind": "cancelled", "reason": "cancelled before it started"})
            return
        placement, values = job.placement, job.request.options()
        if placement.nproc > 1:  # the rendezvous its ranks share
            placement = replace(placement, port=free_port())
        events = self._context.Queue()
        process = self._context.Process(target=run_worker, args=(job.kind, values, placement, events,
                                                              job.stop_requested), daemon=True)
        process.start()
        helpers = [self._context.Process(target=helper_rank, args=(values, placement, rank), daemon=True)
                   for rank in range(1, placement.nproc)]
        for helper in helpers:
            helper.start()
        job.state, job.process, job.helpers = "running", process, helpers
        try:
            self._follow(job, process, events, helpers)
        finally:
            for helper in helpers:  # a finished helper is tearing down its process group: let it end cleanly
                helper.join(timeout=HELPER_EXIT_SECONDS if job.state == "done" else 0.5)
                if helper.is_alive():
                    helper.kill()
        process.join(timeout=5)

    def _follow(self, job: Job, process, events, helpers: list) -> None:
        """Record the worker's events until a final one; fail the job when a helper rank dies early."""
        cancelled_at = None
        while job.state not in FINAL:
            try:
                job.record(events.get(timeout=0.05))
                continue
            except queue.Empty:
                pass
            if job.stop_requested.is_set() and cancelled_at is None:
                cancelled_at = time.monotonic()
            if cancelled_at is not None and time.monotonic() - cancelled_at > CANCEL_GRACE_SECONDS:
                process.terminate()
                job.record({"kind": "cancelled", "reason": "cancelled (worker terminated)"})
            elif not process.is_alive() and events.empty():
                job.record({"kind": "failed", "reason": f"the worker exited with code {process.exitcode} without a "
                                                        f"result"})
            else:
                dead = [rank for rank, helper in enumerate(helpers, 1) if helper.exitcode not in (None, 0)]
                if dead:
                    process.terminate()
                    job.record({"kind": "failed", "reason": f"training rank {dead[0]} of {len(helpers) + 1} exited "
                                                            f"with code {helpers[dead[0] - 1].exitcode}"})

    def kill(self, job: Job) -> None:
        """End a job's worker at once, as a crash would (training resumes from its last checkpoint)."""
        for process in [job.process, *job.helpers]:
            if process is not None:
                process.kill()

    def active(self) -> list[Job]:
        return [job for job in self.jobs.values() if job.state not in FINAL]

    def finished(self) -> list[Job]:
        """The jobs that ended with a result, oldest first."""
        return [job for job in self.jobs.values() if job.state == "done"]


_MANAGER: list[JobManager] = []  # the one manager, once made
_MAKING = threading.Lock()  # two sessions opening at once make one manager between them


def manager() -> JobManager:
    """The process-wide job manager (one per server: every browser session sees the same jobs)."""
    with _MAKING:
        if not _MANAGER:
            _MANAGER.append(JobManager())
        return _MANAGER[0]

