"""Busy states: a loading overlay on what a slow recompute will change, sent before the work starts."""
from __future__ import annotations

from typing import Callable

import panel as pn

SEND_MS = 40  # the pause that lets the overlay's patch leave before the work blocks the session's thread


def busy(targets: list, work: Callable[[], None]) -> None:
    """Run ``work`` with a loading overlay on ``targets``: the overlay is sent first, the work runs on the
    session's thread a moment later (once the overlay's patch is on its way) and clears it. Before the page has
    loaded, or without a session (a test driving a view from Python), the work runs at once."""
    document = pn.state.curdoc
    if document is None or document.session_context is None or not pn.state.loaded:
        work()  # no page is showing yet (or no session at all): nothing to cover
        return
    for target in targets:
        target.loading = True

    def run() -> None:
        try:
            work()
        finally:
            for target in targets:
                target.loading = False

    document.add_timeout_callback(run, SEND_MS)
