"""How fast a job answers: seconds from ``submit`` to its first progress event, and from ``cancel`` to its final
event, for a tiny training job (what the dashboard's Train tab starts), medians over repeats:

    python benchmarks/job_latency.py --repeats 5 [--write-docs]

The tests bound the cancel by events (it stops at a step and keeps its checkpoint); its latency is measured here.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

from report import publish

from engine.config import GRFConfig, ModelConfig, TrainingConfig
from engine.jobs import JobManager
from engine.pipelines.generate_data import DataRequest
from engine.pipelines.train import TrainRequest

GRF = DataRequest(generator="grf", config=GRFConfig(size=16, count=64, seed=1), name="g.nc")


def _training(run: str) -> TrainRequest:
    return TrainRequest(data="g.nc", out=run, model=ModelConfig(size="tiny"), previews=True,
                        training=TrainingConfig(steps=100000, batch_size=4, log_every=1, checkpoint_every=50,
                                                device="cpu"))


def _first_event(job, kind: str, limit: float = 120.0) -> float:
    """Seconds until ``job`` has an event of ``kind``."""
    start = time.monotonic()
    while kind not in job.latest:
        if time.monotonic() - start > limit or job.state in ("failed", "done"):
            raise SystemExit(f"job {job.id} gave no {kind} event: {job.state} {job.reason}")
        time.sleep(0.005)
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="jobs started and cancelled (default: 5)")
    parser.add_argument("--write-docs", action="store_true", help="put the table into docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    jobs = JobManager()
    with tempfile.TemporaryDirectory() as folder:
        data = jobs.submit(GRF, data_dir=folder)
        if not data.wait(120) or data.state != "done":
            raise SystemExit(f"the dataset job failed: {data.reason}")
        started, cancelled = [], []
        for repeat in range(args.repeats):
            submitted = time.monotonic()
            job = jobs.submit(_training(f"runs/r{repeat}"), data_dir=folder, threads=1)
            _first_event(job, "progress")
            started.append(time.monotonic() - submitted)
            _first_event(job, "checkpoint")
            asked = time.monotonic()
            job.cancel()
            job.wait(60)
            cancelled.append(time.monotonic() - asked)
    rows = ["| measure (tiny U-Net training job, 16² GRF) | median s | min s | max s |", "|---|---|---|---|"]
    for label, values in (("submit → first progress event", started), ("cancel → final event", cancelled)):
        rows.append(f"| {label} | {statistics.median(values):.3f} | {min(values):.3f} | {max(values):.3f} |")
    print("\n".join(rows))
    if args.write_docs:
        publish("job_latency", "python benchmarks/job_latency.py " + " ".join(argv or sys.argv[1:]), "\n".join(rows))


if __name__ == "__main__":
    main()
