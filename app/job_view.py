"""A view that follows one background job per browser session and redraws from its new events."""
from __future__ import annotations

import os

import panel as pn

from engine.checkpoints import load_checkpoint
from engine.data.store import DataStore
from engine.errors import EngineError
from engine.jobs import FINAL


def launch_device() -> str:
    """The device ``launch.py --device`` chose (auto, cpu or cuda): where the views' jobs run unless changed."""
    return os.environ.get("EMULATOR_STUDIO_DEVICE", "auto")


def run_table(store: DataStore) -> list[dict]:
    """Every run folder under ``runs/`` with a readable checkpoint: name, path, task, step, last loss, model size."""
    rows = []
    for path in sorted((store.root / "runs").glob("*/checkpoint.pt")):
        try:
            state = load_checkpoint(path)
        except EngineError:
            continue
        history = state.get("history") or [[0, float("nan")]]
        rows.append({"run": path.parent.name, "path": str(path.relative_to(store.root)),
                     "task": state.get("task", "generate"), "step": state["step"],
                     "loss": round(float(history[-1][1]), 5), "model": state["configs"]["model"]["size"],
                     "data": state["data"].get("source", "")})
    return rows


class JobView(pn.viewable.Viewer):
    """Subclasses draw progress batches, other events, and the final event; ``poll`` feeds them."""

    job = None
    cursor = 0
    label = "Job"  # the status line's name for this view's jobs

    def poll(self) -> None:
        """Apply the followed job's new events (called by the session's periodic callback)."""
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

    def _show_progress(self, events: list[dict]) -> None:
        raise NotImplementedError

    def _show_event(self, event: dict) -> None:
        """Events other than progress and the final one (previews, checkpoints); ignored unless drawn."""

    def _finish(self, event: dict) -> None:
        raise NotImplementedError

    def _job_buttons(self, start: str, width: int = 100) -> None:
        """A Start button named ``start`` that runs ``self.start`` and a Stop button that cancels the job."""
        self.start_button = pn.widgets.Button(label=start, color="primary", width=width)
        self.stop_button = pn.widgets.Button(label="Stop", color="warning", width=90, disabled=True)
        # button events arrive without the document lock: run their Bokeh edits on the session's next tick
        self.start_button.on_click(lambda _: pn.state.execute(self.start, schedule=True))
        self.stop_button.on_click(lambda _: self.job and self.job.cancel())

    def _running(self) -> bool:
        return self.job is not None and self.job.state not in FINAL

    def _fail(self, reason: str) -> None:
        """Show why a job could not start or failed (views with a ``failure`` alert)."""
        self.failure.object, self.failure.visible = f"**{self.label} failed:** {reason}", True

    def _submit(self, kind: str) -> None:
        """Start a job of ``kind`` with the view's ``options()`` and follow it (views with Start/Stop buttons)."""
        self.job, self.cursor = self.jobs.submit(kind, self.options()), 0
        self.start_button.disabled, self.stop_button.disabled = True, False
        self.status.object = f"{self.label} job {self.job.id}: starting a worker…"

    def _job_result(self, event: dict) -> dict | None:
        """Re-enable Start and return a finished job's result; a cancelled or failed one is reported instead
        (views with ``start_button``, ``stop_button``, ``status`` and ``_fail``)."""
        self.start_button.disabled, self.stop_button.disabled = False, True
        if event["kind"] == "done":
            return event["result"]
        self.status.object = f"{self.label} job {self.job.id} {event['kind']}."
        if event["kind"] == "failed":
            self._fail(event["reason"])
        return None
