"""The Jobs view: every job of this server (any browser session's), its state and progress, and Cancel.

Jobs live in the server process (``engine.jobs.manager()``), not in a page: a reloaded page lists them here and
its views follow the running ones again (``JobView.reattach``)."""
from __future__ import annotations

import time

import panel as pn

from engine.jobs import FINAL, Job, JobManager

REFRESH_SECONDS = 1.0  # the table is redrawn at most this often


def job_target(job: Job) -> str:
    """What a job works on: its run folder, output file, dataset kind or checkpoint."""
    options = job.options
    return str(options.get("out") or options.get("kind") or options.get("checkpoint") or "")


def job_progress(job: Job) -> str:
    """``step / steps`` of the newest progress event, or the final state's reason."""
    if job.state in FINAL:
        return job.reason or job.state
    event = job.latest.get("progress") or {}
    return f"{event['step']} / {event['steps']}" if "step" in event and "steps" in event else "…"


def jobs_table(jobs: list[Job]) -> str:
    """A markdown table of jobs, newest first."""
    if not jobs:
        return "No jobs yet: start one in Train, Rollout, Super-resolution or New dataset."
    rows = [f"| {job.id} | {job.kind} | {job_target(job)} | {job.state} | {job_progress(job)} | "
            f"{time.strftime('%H:%M:%S', time.localtime(job.submitted))} |" for job in reversed(jobs)]
    return "| job | kind | run / output | state | progress | started |\n|---|---|---|---|---|---|\n" + "\n".join(rows)


class JobsView(pn.viewable.Viewer):
    """The server's jobs with Cancel for a running one."""

    def __init__(self, jobs: JobManager, **params):
        super().__init__(**params)
        self.jobs, self.drawn_at = jobs, 0.0
        self.table = pn.pane.Markdown("", name="jobs-table", sizing_mode="stretch_width")
        self.running = pn.widgets.Select(name="Running job", options={}, width=260)
        self.cancel_button = pn.widgets.Button(label="Cancel job", color="warning", width=110)
        self.cancel_button.on_click(lambda _: self.cancel())
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        """Redraw the table and the running jobs' list (at most every REFRESH_SECONDS unless forced)."""
        now = time.monotonic()
        if not force and now - self.drawn_at < REFRESH_SECONDS:
            return
        self.drawn_at = now
        jobs = list(self.jobs.jobs.values())
        self.table.object = jobs_table(jobs)
        self.running.options = {f"{job.id}: {job.kind} {job_target(job)}": job.id for job in jobs
                                if job.state not in FINAL}
        self.cancel_button.disabled = not self.running.options

    def cancel(self) -> None:
        job = self.jobs.jobs.get(self.running.value)
        if job is not None:
            job.cancel()
        self.refresh(force=True)

    def __panel__(self):
        return pn.Column(pn.Row(self.running, self.cancel_button, align="end"), self.table, sizing_mode="stretch_width")
