"""Background jobs: training, sampling, data generation and rollouts in worker processes.

A job runs in its own process (spawned; a crash there cannot take the caller down) and streams small event
dicts back through a queue: ``progress`` (step, loss or preview field and spectrum), ``checkpoint``, and one
final event whose kind is ``done`` (with a ``result``), ``cancelled`` or ``failed`` (with a ``reason``).
Progress events are rate-limited in the worker (``MIN_EVENT_SECONDS``). ``cancel()`` sets a flag the worker
checks between steps; a worker that has not finished a second later is terminated. Jobs on a CUDA device
run one at a time per device; CPU jobs start at once. A training job writes atomic checkpoints, so the same
job submitted again after a kill resumes from the last one.

Job options are plain dicts (picklable): config values by config name, e.g.
``{"task": "forecast", "data": "kolmogorov-64-….nc", "out": "runs/si", "model": {...}, "training": {...}}``.
"""
from __future__ import annotations

import itertools
import os
import multiprocessing as mp
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

MIN_EVENT_SECONDS = 1 / 30  # at most 30 progress events per second per job: a live field at the browser's frame rate
CANCEL_GRACE_SECONDS = 1.0
PREVIEW_SIZE = 128  # previews larger than this are block-averaged down
FINAL = ("done", "cancelled", "failed")
KINDS = ("train", "sample", "data", "rollout")


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


# ----- what each kind of job does (runs in the worker) -----------------------------------------------------------
def _configs(options: dict) -> dict:
    """Config objects from an options dict: {"noise": {...}} → NoiseConfig(**...), by name."""
    from engine import config as c

    classes = {"noise": c.NoiseConfig, "schedule": c.ScheduleConfig, "model": c.ModelConfig, "training": c.TrainingConfig,
               "sampler": c.SamplerConfig, "forecast": c.ForecastConfig, "forecast_sampler": c.ForecastSamplerConfig,
               "rollout": c.RolloutConfig, "pdd": c.PDDConfig, "pdd_sampler": c.PDDSamplerConfig, "grf": c.GRFConfig,
               "kolmogorov": c.KolmogorovConfig, "lorenz96": c.Lorenz96Config}
    return {name: cls(**options.get(name, {})) for name, cls in classes.items()}


def _train(options: dict, emit: Callable, should_stop: Callable) -> dict:
    from engine.data.store import DataStore
    from engine.training import Trainer, make_task

    cfg, store = _configs(options), DataStore(options.get("data_dir"))
    task = make_task(options.get("task", "generate"), store.path(options["data"]), options.get("variable"), cfg["noise"],
                     cfg["schedule"], cfg["forecast"], cfg["training"].spectral_weight, cfg["pdd"])
    out = store.path(options["out"])

    def report(event: dict) -> None:
        emit(event)
        if event["kind"] == "checkpoint" and options.get("previews", True):
            emit({"kind": "preview", "step": event["step"], **_preview_of(task, event["path"], cfg)})

    trainer = Trainer(task, cfg["model"], cfg["training"], out, report, should_stop)
    path = trainer.run(resume=options.get("resume", True))
    return {"checkpoint": str(path), "step": trainer.step, "history": trainer.history}


def _preview_of(task, checkpoint: str, cfg: dict) -> dict:
    """What the model does now: 4 samples (8 Euler steps) of a generator, or one forecast of an emulator,
    as a preview field and its spectrum next to the data's."""
    import torch

    from engine.diagnostics import spectra

    if task.kind == "generate":
        from engine.generation import checkpoint_setup, generate

        noise, schedule = (type(cfg[name])(**task.configs[name]) for name in ("noise", "schedule"))
        setup = checkpoint_setup(checkpoint, task.data, noise, schedule, torch.device("cpu"))
        fields = generate(setup, cfg["sampler"].__class__(steps=8, seed=0), 4).samples
        data = task.data.fields[:64]
    else:
        from engine.forecast import load_forecaster
        from engine.pdd import load_pdd

        state = task.data.denormalize(task.data.fields[:1, 0])  # the first trajectory's first state
        if task.kind == "pdd":  # one noise-free step of the simulation at λ = 0
            fields = load_pdd(checkpoint).stepper(0.0, noise=False)(state)
        else:
            fields = load_forecaster(checkpoint).step(state, cfg["forecast_sampler"], torch.Generator().manual_seed(0))
        data = task.data.denormalize(task.data.fields[:, :16]).flatten(0, 1)
    ndim = getattr(task, "spatial_dims", 2)

    def mean_spectrum(x):
        return spectra(x, ndim).reshape(-1, x.shape[-1] // 2 + 1).mean(0).numpy()

    return {"field": preview(fields[0]), "spectrum": mean_spectrum(fields), "data_spectrum": mean_spectrum(data)}


def _sample(options: dict, emit: Callable, should_stop: Callable) -> dict:
    from engine.data.store import DataStore, load_fields
    from engine.generation import generate, make_setup
    from engine.spectral import radial_spectrum
    from engine.training import resolve_device

    cfg, store = _configs(options), DataStore(options.get("data_dir"))
    device = resolve_device(options.get("device", "auto"))
    data = load_fields(store.path(options["data"]), options.get("variable"))
    checkpoint = options.get("checkpoint")
    setup = make_setup(cfg["model"], data, cfg["noise"], cfg["schedule"], checkpoint and str(store.path(checkpoint)), device)

    def step(event):
        if should_stop():
            raise Cancelled
        emit({"kind": "progress", "step": event["step"], "steps": cfg["sampler"].steps, "preview": preview(event["x"][0])})

    result = generate(setup, cfg["sampler"], options.get("count", 16), device, step)
    return {"nfe": result.nfe, "seconds": result.seconds, **result.errors, "samples": preview(result.samples[:4]),
            "spectrum": radial_spectrum(result.samples).numpy()}


def _data(options: dict, emit: Callable, should_stop: Callable) -> dict:
    from engine.data.catalog import cached_name, generate
    from engine.data.store import DataStore, write_dataset

    kind, store = options["kind"], DataStore(options.get("data_dir"))
    config = _configs(options)[kind]
    name = options.get("name") or cached_name(config)

    def progress(event):
        if should_stop():
            raise Cancelled
        emit(event)

    partial = store.partial_path(name)
    write_dataset(generate(config, progress, partial), store.path(name))
    partial.unlink(missing_ok=True)
    return {"name": name}


def _rollout(options: dict, emit: Callable, should_stop: Callable) -> dict:
    from engine.data.store import DataStore
    from engine.rollout import run_rollout

    cfg = _configs(options)

    def progress(event):
        emit({**event, "preview": preview(event["preview"]), "spectrum": event["spectrum"].numpy()})

    result, summary = run_rollout(DataStore(options.get("data_dir")), options["checkpoint"], options["data"],
                                  cfg["rollout"], cfg["forecast_sampler"], options.get("refiner"),
                                  options.get("variable"), options.get("out"), progress, should_stop)
    if result.reason == "stopped":
        raise Cancelled
    return {**summary, "spectra": result.spectra.numpy()}


def _superres(options: dict, emit: Callable, should_stop: Callable) -> dict:
    from engine.data.store import DataStore
    from engine.pdd import run_superres

    cfg, last = _configs(options), [0.0]

    def progress(event):
        if should_stop():
            raise Cancelled
        if time.monotonic() - last[0] >= MIN_EVENT_SECONDS or event["step"] == event["steps"]:
            last[0] = time.monotonic()
            state = event["state"]
            emit({"kind": "progress", "step": event["step"], "steps": event["steps"], "lam": event["lam"],
                  "preview": preview(state[0, state.shape[1] // 2])})

    summary, dataset = run_superres(DataStore(options.get("data_dir")), options["checkpoint"], options["data"],
                                    cfg["pdd_sampler"], options.get("sequences", 1), options.get("variable"),
                                    options.get("out"), options.get("from_noise", False), options.get("device", "auto"),
                                    progress)
    name = [v for v in dataset.data_vars if f"{v}_coarse" in dataset.data_vars][0]
    middle = dataset.sizes["frame"] // 2
    return {**summary, **{f"{key}_field": preview(dataset[var].values[0, middle])
                          for key, var in (("input", f"{name}_coarse"), ("output", name), ("truth", f"{name}_truth"))}}


RUNNERS = {"train": _train, "sample": _sample, "data": _data, "rollout": _rollout, "superres": _superres}


def _worker(kind: str, options: dict, events, cancel) -> None:
    """Process entry point: run the job, stream throttled events, end with exactly one final event."""
    import torch

    # leave a core to the caller (the dashboard server stays responsive); oversubscribed OpenMP threads spin
    torch.set_num_threads(options.get("threads") or max(1, (os.cpu_count() or 2) - 1))
    last = [0.0]

    def emit(event: dict) -> None:
        now = time.monotonic()
        if event.get("kind") != "progress" or now - last[0] >= MIN_EVENT_SECONDS:
            last[0] = now
            events.put(event)

    try:
        result = RUNNERS[kind](options, emit, cancel.is_set)
        events.put({"kind": "cancelled", "reason": "cancelled"} if cancel.is_set() else {"kind": "done", "result": result})
    except Cancelled:
        events.put({"kind": "cancelled", "reason": "cancelled"})
    except Exception as err:  # every failure ends the job with its reason; the caller keeps running
        from engine.errors import EngineError

        events.put({"kind": "failed", "reason": str(err) if isinstance(err, EngineError) else f"{type(err).__name__}: {err}"})


# ----- the caller's side ----------------------------------------------------------------------------------------
@dataclass
class Job:
    """A submitted job: its state, its events (numbered, the last ``MAX_EVENTS`` kept) and its result."""

    id: int
    kind: str
    options: dict
    state: str = "queued"  # queued → running → done | cancelled | failed
    reason: str | None = None
    result: dict | None = None
    submitted: float = field(default_factory=time.time)
    finished: float | None = None
    events: deque = field(default_factory=lambda: deque(maxlen=Job.MAX_EVENTS))
    latest: dict = field(default_factory=dict)  # the newest event of each kind
    count: int = 0
    MAX_EVENTS = 2000

    def __post_init__(self):
        self._cancel = mp.get_context("spawn").Event()
        self._done = threading.Event()

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
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


class JobManager:
    """Starts jobs in worker processes and collects their events on a thread per job."""

    def __init__(self):
        self._context = mp.get_context("spawn")
        self._ids = itertools.count(1)
        self.jobs: dict[int, Job] = {}
        self._device_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str, options: dict) -> Job:
        """Start a job of ``kind`` (train, sample, data, rollout) with plain-dict ``options``."""
        if kind not in RUNNERS:
            from engine.errors import EngineError

            raise EngineError(f"job kind must be one of {', '.join(KINDS)}, not {kind!r}")
        job = Job(next(self._ids), kind, dict(options))
        with self._lock:
            self.jobs[job.id] = job
        threading.Thread(target=self._supervise, args=(job,), daemon=True, name=f"job-{job.id}").start()
        return job

    def _device_lock(self, options: dict) -> threading.Lock | None:
        """One lock per CUDA device: GPU jobs are serialized, CPU jobs are not."""
        import torch

        device = (options.get("training") or options.get("rollout") or {}).get("device", options.get("device", "auto"))
        if device == "cpu" or not torch.cuda.is_available():
            return None
        with self._lock:
            return self._device_locks.setdefault("cuda:0", threading.Lock())

    def _supervise(self, job: Job) -> None:
        lock = self._device_lock(job.options)
        if lock is not None:
            lock.acquire()
        try:
            self._run(job)
        finally:
            if lock is not None:
                lock.release()

    def _run(self, job: Job) -> None:
        if job._cancel.is_set():
            job.record({"kind": "cancelled", "reason": "cancelled before it started"})
            return
        events = self._context.Queue()
        process = self._context.Process(target=_worker, args=(job.kind, job.options, events, job._cancel), daemon=True)
        process.start()
        job.state, job.process = "running", process
        cancelled_at = None
        while job.state not in FINAL:
            try:
                job.record(events.get(timeout=0.05))
                continue
            except queue.Empty:
                pass
            if job._cancel.is_set() and cancelled_at is None:
                cancelled_at = time.monotonic()
            if cancelled_at is not None and time.monotonic() - cancelled_at > CANCEL_GRACE_SECONDS:
                process.terminate()
                job.record({"kind": "cancelled", "reason": "cancelled (worker terminated)"})
            elif not process.is_alive() and events.empty():
                job.record({"kind": "failed", "reason": f"the worker exited with code {process.exitcode} without a result"})
        process.join(timeout=5)

    def kill(self, job: Job) -> None:
        """End a job's worker at once, as a crash would (training resumes from its last checkpoint)."""
        process = getattr(job, "process", None)
        if process is not None:
            process.kill()

    def active(self) -> list[Job]:
        return [job for job in self.jobs.values() if job.state not in FINAL]


_MANAGER: JobManager | None = None


def manager() -> JobManager:
    """The process-wide job manager (one per server: every browser session sees the same jobs)."""
    global _MANAGER
    if _MANAGER is None:
        _MANAGER = JobManager()
    return _MANAGER

