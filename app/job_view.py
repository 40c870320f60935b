"""A view that follows one background job per browser session and redraws from its new events."""
from __future__ import annotations

import panel as pn

from engine.jobs import FINAL


class JobView(pn.viewable.Viewer):
    """Subclasses draw progress batches, other events, and the final event; ``poll`` feeds them."""

    job = None
    cursor = 0

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
