"""The base of every view that runs a background job: Start/Stop, the status line, the failure alert, and
following the job's events. Subclasses say what to submit (``request``: the operation's typed request, the one the
CLI builds too; ``placement``: where it runs), what to check first
(``prepare``) and how to draw progress, other events and the result. See docs/architecture.md.
"""
from __future__ import annotations

import dataclasses

import panel as pn
import param

from engine.config import options
from engine.errors import EngineError
from engine.jobs import FINAL, Job, JobManager
from engine.pipelines.request import Request


def settings_line(request: Request) -> str:
    """What a request runs with, for a person: its plain fields and its configs' parameters that differ from their
    defaults, ``name value`` pairs in code font."""
    pairs = []
    for spec in dataclasses.fields(request):
        value = getattr(request, spec.name)
        if isinstance(value, param.Parameterized):
            pairs += [(f"{spec.name}.{name}", v) for name, v in options(value).items()
                      if v != value.param[name].default]
        elif value not in (None, False, "") and value != spec.default:
            pairs.append((spec.name, value))
    return ", ".join(f"`{name} {value}`" for name, value in pairs) or "its defaults"


class JobView(pn.viewable.Viewer):
    """One job at a time per browser session, followed by ``poll`` (the session's periodic callback)."""

    label = "Job"  # the status line's name for this view's jobs
    request_type: type[Request] = Request  # what this view's jobs run
    start_label, stop_label, button_width = "Start", "Stop", 100
    status_name = "job-status"  # the status pane's name (browser tests find it by name)
    idle_text = "No job yet."
    ended = {"cancelled": "cancelled", "failed": "failed"}  # the status line's words for a job that did not finish
    shows_last_result = True  # a fresh page shows the newest finished job's result (not where a result acts)

    def __init__(self, jobs: JobManager, **params):
        super().__init__(**params)
        self.jobs, self.job, self.cursor = jobs, None, 0
        self.on_finish = None  # called with (view, message) when a followed job ends: the Studio notifies
        self.status = pn.pane.Markdown(self.idle_text, name=self.status_name)
        self.failure = pn.pane.Alert("", alert_type="danger", visible=False)
        self.job_settings = pn.pane.Markdown("", visible=False, name=f"{self.status_name}-settings")
        self.start_button = pn.widgets.Button(label=self.start_label, color="primary", width=self.button_width)
        self.stop_button = pn.widgets.Button(label=self.stop_label, color="warning", width=90, disabled=True)
        # button events arrive without the document lock: run their Bokeh edits on the session's next tick
        self.start_button.on_click(lambda _: pn.state.execute(self.start, schedule=True))
        self.stop_button.on_click(lambda _: self.stop())

    # ----- what subclasses provide --------------------------------------------------------------------------
    def request(self) -> Request:
        """What the job does: the operation's request (``engine.pipelines.request``)."""
        raise NotImplementedError

    def placement(self) -> dict:
        """Where it runs: ``JobManager.submit``'s keywords (the data folder by default)."""
        return {"data_dir": str(self.store.root)}

    def prepare(self) -> None:
        """Check and draw what must be in place before a job starts; raise ``EngineError`` to refuse."""

    def _show_progress(self, events: list[dict]) -> None:
        """A batch of progress events (the newest last)."""

    def _show_event(self, event: dict) -> None:
        """Events other than progress and the final one (previews, checkpoints)."""

    def _show_result(self, result: dict) -> None:
        """The result of a job that finished."""

    def _after_job(self) -> None:
        """After any final event (done, cancelled or failed)."""

    # ----- the shared mechanics -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.job is not None and self.job.state not in FINAL

    def guarded(self, update) -> None:
        """Run an update; a bad input shows its one-line reason in the failure alert instead of raising."""
        try:
            update()
        except EngineError as err:
            self.fail(str(err), refused=True)

    def fail(self, reason: str, refused: bool = False) -> None:
        """Show why: a request the engine refused (bad input, a run in use) is not called a failure."""
        word = "refused" if refused else "failed"
        self.failure.object, self.failure.visible = f"**{self.label} {word}:** {reason}", True

    def start(self) -> None:
        """Check, then submit the job and follow it (nothing happens while one is running)."""
        if self.running:
            return
        try:
            self.prepare()
        except EngineError as err:
            self.fail(str(err), refused=True)
            return
        self.failure.visible = False
        self.follow(self.jobs.submit(self.request(), **self.placement()))

    def follow(self, job: Job, own: bool = True) -> None:
        """Draw ``job``'s events from its first; one this page did not start (``own`` False: another page's, or
        this page's before a reload) is shown with the settings it runs with, which the controls need not match."""
        self.job, self.cursor = job, 0
        self.start_button.disabled, self.stop_button.disabled = True, False
        self.status.object = f"{self.label} job {job.id}: starting a worker…"
        self.job_settings.visible = not own
        if not own:
            self.job_settings.object = (f"Job {job.id} was started before this page opened; it runs with "
                                        f"{settings_line(job.request)}. The controls set the next job.")

    def stop(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def reattach(self) -> None:
        """Follow this kind's newest running job when none is followed: a reloaded page, or another session's job,
        shows it (its kept events replay) and can cancel it. A page that has followed none shows the newest
        finished one instead, with its result and downloads."""
        running = [job for job in self.jobs.active() if isinstance(job.request, self.request_type)]
        if running and not self.running:
            self.follow(running[-1], own=False)
            return
        finished = [job for job in self.jobs.finished() if isinstance(job.request, self.request_type)]
        if finished and self.job is None and self.shows_last_result:
            self.follow(finished[-1], own=False)

    def poll(self) -> None:
        """Apply the followed job's new events (following a running job of this kind if there is one)."""
        self.reattach()
        if self.job is None:
            return
        events = self.job.events_since(self.cursor)
        if not events:
            return
        self.cursor = events[-1]["seq"]
        progress = [e for e in events if e["kind"] == "progress"]
        if progress:
            self._show_progress(progress)
        for event in events:
            if event["kind"] in FINAL:
                self._finish(event)
            elif event["kind"] != "progress":
                self._show_event(event)

    def _finish(self, event: dict) -> None:
        self.start_button.disabled, self.stop_button.disabled = False, True
        if event["kind"] == "done":
            self._show_result(event["result"])
        else:
            self.status.object = f"{self.label} job {self.job.id} {self.ended[event['kind']]}."
            if event["kind"] == "failed":
                self.fail(event["reason"], refused=event.get("refused", False))
        self._after_job()
        if self.on_finish is not None:
            self.on_finish(self, f"{self.label} job {self.job.id} {event['kind']}")
