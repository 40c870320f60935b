"""The Jobs view: every job of this server (any browser session's), its state and progress, and Cancel; any
finished job's output to download (named as it is stored); and the results jobs have written into the data folder
(rollouts, super-resolution results, samples).

Jobs live in the server process (``engine.jobs.manager()``), not in a page: a reloaded page lists them here and
its views follow the running ones again (``JobView.reattach``)."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import panel as pn

from engine.cluster import dashboard_link, scheduler_address
from engine.config import ClusterConfig
from engine.data.store import DataStore
from engine.errors import EngineError
from engine.jobs import FINAL, Job, JobManager

REFRESH_SECONDS = 1.0  # the table is redrawn at most this often


def job_target(job: Job) -> str:
    """What a job works on: its run folder, output file, dataset kind or checkpoint."""
    return job.request.target


def job_dataset(job: Job) -> str:
    """The dataset a job reads (a generated dataset's own name for a data job), or '' when it reads none."""
    return str(getattr(job.request, "data", None) or getattr(job.request, "name", None) or "")


def job_label(job: Job) -> str:
    """A job in a list: its number, kind, what it writes and what it reads."""
    dataset = job_dataset(job)
    return f"{job.id}: {job.kind} {job_target(job)}" + (f" on {dataset}" if dataset and dataset != job_target(job)
                                                         else "")


def job_output(job: Job, store: DataStore) -> Path | None:
    """The file a finished job wrote, while it is in the data folder: a training's checkpoint, a dataset, a
    rollout, a super-resolution or a sample file."""
    result = (job.latest.get("done") or {}).get("result")
    written = (result.get("out") or result.get("name")) if isinstance(result, dict) else None
    try:
        path = store.path(written or job_target(job))
    except EngineError:
        return None
    path = path / "checkpoint.pt" if path.is_dir() else path
    return path if path.is_file() else None


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
    def code(text: str) -> str:
        return f"`{text}`" if text else ""

    rows = [f"| {job.id} | {job.kind} | {code(job_target(job))} | {code(job_dataset(job))} | {job.state} | "
            f"{job_progress(job)} | {time.strftime('%H:%M:%S', time.localtime(job.submitted))} |"
            for job in reversed(jobs)]
    return ("| job | kind | run / output | dataset | state | progress | started |\n|---|---|---|---|---|---|---|\n"
            + "\n".join(rows))


def outputs_table(store: DataStore) -> str:
    """A markdown table of the results in the data folder (``DataStore.outputs``), by path and size."""
    rows = [f"| {entry['name']} | {entry['mib']} |" for entry in store.outputs()]
    return ("**Results** in the data folder (downloadable above or from their views, openable with xarray)\n\n"
            "| file | MiB |\n|---|---|\n" + "\n".join(rows)) if rows else "No results written yet."


class JobsView(pn.viewable.Viewer):
    """The server's jobs with Cancel for a running one, the results in the data folder, and the Dask cluster
    rollouts are sent to (checked in a thread: an unreachable address must not stall the page)."""

    def __init__(self, jobs: JobManager, store: DataStore, cluster: ClusterConfig, **params):
        super().__init__(**params)
        self.jobs, self.store, self.cluster, self.drawn_at, self.finished = jobs, store, cluster, 0.0, -1
        self.cluster_status = pn.pane.Markdown("", name="cluster-status", sizing_mode="stretch_width")
        self.check_button = pn.widgets.Button(label="Check scheduler", width=140)
        self.check_button.on_click(lambda _: self.check_cluster())
        self.checked: str | None = None  # what the last check found, shown by the next refresh
        self.table = pn.pane.Markdown("", name="jobs-table", sizing_mode="stretch_width")
        self.outputs = pn.pane.Markdown("", name="outputs-table", sizing_mode="stretch_width")
        self.running = pn.widgets.Select(label="Running job", options={}, width=260)
        self.cancel_button = pn.widgets.Button(label="Cancel job", color="warning", width=110)
        self.cancel_button.on_click(lambda _: self.cancel())
        self.done = pn.widgets.Select(label="Finished job", options={}, width=360)
        self.download = pn.widgets.FileDownload(callback=self._output_file, label="Download its output",
                                                disabled=True, width=220, align="end")
        self.done.param.watch(lambda _: self._name_download(), "value")
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        """Redraw the table and the running jobs' list (at most every REFRESH_SECONDS unless forced)."""
        now = time.monotonic()
        if not force and now - self.drawn_at < REFRESH_SECONDS:
            return
        self.drawn_at = now
        if self.checked is not None:
            self.cluster_status.object, self.checked = self.checked, None
        jobs = list(self.jobs.jobs.values())
        self.table.object = jobs_table(jobs)
        running = {job_label(job): job.id for job in jobs if job.state not in FINAL}
        if running != self.running.options:
            self.running.options = running
            if self.running.value not in running.values():  # show a running job, not a blank choice
                self.running.value = next(iter(running.values()), None)
        self.cancel_button.disabled = not running
        finished = sum(job.state in FINAL for job in jobs)
        if finished != self.finished:  # a job has ended: it may have written a result
            self.finished, self.outputs.object = finished, outputs_table(self.store)
            self._list_finished(jobs)

    def _list_finished(self, jobs: list[Job]) -> None:
        """The finished jobs whose output is still in the data folder, newest first (the newest chosen)."""
        done = {job_label(job): job.id for job in reversed(jobs) if job.state == "done"
                and job_output(job, self.store) is not None}
        self.done.options = done
        if self.done.value not in done.values():
            self.done.value = next(iter(done.values()), None)
        self._name_download()

    def _chosen_output(self) -> Path | None:
        """The file the chosen finished job wrote, while it is in the data folder."""
        job = self.jobs.jobs.get(self.done.value)
        return job_output(job, self.store) if job is not None else None

    def _name_download(self) -> None:
        """The download takes the chosen job's stored file name."""
        path = self._chosen_output()
        self.download.disabled = path is None
        if path is not None:
            self.download.filename = path.name

    def _output_file(self) -> str | None:
        path = self._chosen_output()
        return str(path) if path is not None else None

    def cancel(self) -> None:
        job = self.jobs.jobs.get(self.running.value)
        if job is not None:
            job.cancel()
        self.refresh(force=True)

    def check_cluster(self) -> None:
        """Connect to the scheduler in a thread; the result (its dashboard link, or why not) shows on refresh."""
        try:
            address = scheduler_address(self.cluster.scheduler or None)
        except EngineError as err:
            self.cluster_status.object = f"**{err}**"
            return
        if address is None:
            self.cluster_status.object = "Rollouts run on this machine (no scheduler set)."
            return
        self.cluster_status.object = f"Connecting to {address} …"

        def check() -> None:
            link = dashboard_link(address)
            self.checked = (f"Rollouts run on **{address}**: [cluster dashboard]({link})" if link else
                            f"**No Dask scheduler answered at {address}**: rollouts would fail until one does.")
            self.drawn_at = 0.0

        threading.Thread(target=check, daemon=True, name="cluster-check").start()

    def controls(self) -> list:
        """The sidebar's part for this view: the Dask scheduler rollouts go to, and its dashboard link."""
        return [pn.Param(self.cluster, name="Cluster", widgets={"scheduler": pn.widgets.TextInput},
                         sizing_mode="stretch_width"), self.check_button, self.cluster_status]

    def __panel__(self):
        return pn.Column(pn.Row(self.running, self.cancel_button, align="end"), self.table,
                         pn.Row(self.done, self.download, align="end"), self.outputs, sizing_mode="stretch_width")
