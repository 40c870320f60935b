import os
import subprocess
import sys
import time

import pytest

from engine.checkpoints import load_checkpoint
from engine.config import GRFConfig, ModelConfig, SamplerConfig, TrainingConfig
from engine.data.store import DataStore
from engine.errors import EngineError
from engine.jobs import JobManager
from engine.pipelines.coarse_data import CoarseRequest
from engine.pipelines.generate_data import DataRequest
from engine.pipelines.rollout import RolloutRequest
from engine.pipelines.sample import SampleRequest
from engine.pipelines.train import TrainRequest
from engine.worker import throttled

GRF = DataRequest(generator="grf", config=GRFConfig(size=16, count=64, seed=1), name="g.nc")


def _training(out="runs/g", steps=2000, **fields) -> TrainRequest:
    """A tiny generator's training on g.nc, as the Train view builds it (previews on)."""
    return TrainRequest(data="g.nc", out=out, model=ModelConfig(size="tiny"), previews=True,
                        training=TrainingConfig(steps=steps, batch_size=4, log_every=1, checkpoint_every=5,
                                                device="cpu"), **fields)


def _at(folder, **placement) -> dict:
    return {"data_dir": str(folder), "threads": 1, **placement}


@pytest.fixture(scope="module")
def jobs():
    return JobManager()


@pytest.fixture(scope="module")
def folder(tmp_path_factory, jobs):
    folder = tmp_path_factory.mktemp("jobs")
    job = jobs.submit(GRF, data_dir=str(folder))
    assert job.wait(60) and job.state == "done", job.reason
    assert job.result == {"name": "g.nc"} and (folder / "g.nc").exists()
    return folder


def _first(job, kind, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if kind in job.latest:
            return job.latest[kind]
        time.sleep(0.02)
    raise AssertionError(f"no {kind} event from job {job.id}: {job.state} {job.reason}")


def test_progress_events_pass_at_most_once_per_interval_and_every_other_event_passes():
    """Counted on a clock the test moves: 100 progress events 10 ms apart pass 1 in 4 at a 25 ms interval, with
    their step increasing; a checkpoint event passes whenever it comes."""
    now, sent = [0.0], []
    emit = throttled(sent.append, clock=lambda: now[0], interval=0.025)
    for step in range(100):
        now[0] = step * 0.010
        emit({"kind": "progress", "step": step})
        if step == 51:
            emit({"kind": "checkpoint", "step": step})
    progress = [event["step"] for event in sent if event["kind"] == "progress"]
    assert progress == list(range(0, 100, 3)) and [e["step"] for e in sent if e["kind"] == "checkpoint"] == [51]


def test_a_cancelled_training_stops_at_a_step_keeps_its_checkpoint_and_the_manager_goes_on(jobs, folder):
    """Bounded by events, not seconds (the cancel latency is measured in benchmarks/job_latency.py): the job
    ends cancelled before its last step, with a checkpoint at the step where it stopped."""
    job = jobs.submit(_training("runs/cancelled"), **_at(folder))
    first = _first(job, "checkpoint")
    job.cancel()
    assert job.wait(60) and job.state == "cancelled"
    assert job.events[-1]["kind"] == "cancelled" and jobs.active() == []
    steps = [e["step"] for e in job.events_since(0) if e["kind"] == "checkpoint"]
    saved = load_checkpoint(DataStore(folder).path("runs/cancelled/checkpoint.pt"))
    assert first["step"] <= steps[-1] == saved["step"] < 2000


def test_a_killed_training_job_resumes_from_its_last_checkpoint(jobs, folder):
    job = jobs.submit(_training("runs/killed"), **_at(folder))
    checkpoint = _first(job, "checkpoint")
    jobs.kill(job)
    assert job.wait(10) and job.state == "failed" and "exited with code" in job.reason
    assert (DataStore(folder).path("runs/killed") / "checkpoint.pt").exists()
    again = jobs.submit(_training("runs/killed", steps=checkpoint["step"] + 3), **_at(folder))
    assert again.wait(60) and again.state == "done", again.reason
    steps = [e["step"] for e in again.events_since(0) if e["kind"] == "progress"]
    assert steps[0] > checkpoint["step"] and again.result["step"] == checkpoint["step"] + 3


def test_a_failing_job_reports_why_and_the_manager_keeps_working(jobs, folder):
    bad = jobs.submit(SampleRequest(data="missing.nc", model=ModelConfig(kind="analytic")), **_at(folder))
    assert bad.wait(60) and bad.state == "failed" and "no such data file" in bad.reason
    outside = jobs.submit(TrainRequest(data="../elsewhere.nc", out="runs/g"), **_at(folder))
    assert outside.wait(60) and outside.state == "failed" and "outside the data folder" in outside.reason
    good = jobs.submit(SampleRequest(data="g.nc", model=ModelConfig(kind="analytic"), sampler=SamplerConfig(steps=8),
                                     count=8), **_at(folder))
    assert good.wait(60) and good.state == "done", good.reason
    assert good.result["nfe"] == 8 and good.result["samples"].shape == (4, 16, 16)
    with pytest.raises(EngineError, match="a job runs one of"):
        jobs.submit(CoarseRequest(data="g.nc"))


def test_cpu_jobs_beyond_the_cores_wait_queued_and_start_when_cores_free(folder):
    """Jobs whose threads do not fit in the cores left to jobs stay queued (not started) until one ends; workers'
    OpenMP threads sleep when idle."""
    from engine.devices import job_cores

    jobs = JobManager()
    first = jobs.submit(_training("runs/first"), **_at(folder, threads=job_cores()))
    _first(first, "progress")
    second = jobs.submit(_training("runs/second", steps=3), **_at(folder))
    time.sleep(1.0)
    assert second.state == "queued" and second.count == 0
    first.cancel()
    assert second.wait(60) and second.state == "done", second.reason
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"  # what the spawned workers inherit


def test_a_training_job_on_two_local_processes_trains_data_parallel(jobs, folder):
    """nproc 2: the worker is rank 0 of a gloo world, a helper rank trains beside it, the usual checkpoint."""
    job = jobs.submit(_training("runs/two", steps=6), **_at(folder, nproc=2))
    assert job.wait(120) and job.state == "done", job.reason
    started = next(e for e in job.events if e["kind"] == "started")
    assert started["world_size"] == 2 and started["backend"] == "gloo"
    assert job.result["step"] == 6 and (folder / "runs" / "two" / "checkpoint.pt").exists()
    deadline = time.monotonic() + 60  # the manager reaps the helper (two threads joining it would race)
    while any(helper.exitcode is None for helper in job.helpers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [helper.exitcode for helper in job.helpers] == [0]  # the helper rank finished cleanly


def test_a_job_on_several_processes_must_be_training(jobs, folder):
    with pytest.raises(EngineError, match="only training runs on several processes"):
        jobs.submit(RolloutRequest(checkpoint="runs/g/checkpoint.pt"), nproc=2)


def _running(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie waiting to be reaped does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_a_worker_ends_when_its_server_is_killed(folder):
    """A server killed by a signal runs no cleanup: its job's worker must notice and exit (within 5 s), not
    compute on for nobody (found when a benchmark's killed server left a rollout running for 20 minutes)."""
    script = ("import time\nfrom engine.jobs import JobManager\nfrom engine.pipelines.train import TrainRequest\n"
              f"request = TrainRequest.from_options({_training(steps=100000).options()!r})\n"
              f"job = JobManager().submit(request, data_dir={str(folder)!r}, threads=1)\n"
              "while getattr(job, 'process', None) is None:\n    time.sleep(0.05)\n"
              "print(job.process.pid, flush=True)\ntime.sleep(300)\n")
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(server.stdout.readline())
        assert _running(worker)
    finally:
        server.kill()
        server.wait()
    deadline = time.monotonic() + 5
    while _running(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(worker)
