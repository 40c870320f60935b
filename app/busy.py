"""Busy states: a loading overlay on what a slow recompute will change, sent before the work starts."""
from __future__ import annotations

import threading
from typing import Callable

import panel as pn

SEND_MS = 40  # the pause that lets the overlay's patch leave before the work blocks the session's thread


def page_loaded() -> bool:
    """Whether the session's page has loaded (always, without a session: a test driving a view from Python)."""
    document = pn.state.curdoc
    return document is None or document.session_context is None or pn.state.loaded


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


def in_background(work: Callable[[], object], draw: Callable[[object], None], fail: Callable[[str], None]) -> None:
    """Run ``work`` in a thread (the page stays live), then ``draw(result)`` or ``fail(one-line reason)`` on the
    session's thread (Bokeh models are edited there only); without a session (a test driving a view from Python)
    it all runs at once."""
    def attempt() -> Callable[[], None]:
        try:
            result = work()
        except Exception as error:  # noqa: BLE001 — shown on the page; the server keeps running
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            return lambda: fail(reason)
        return lambda: draw(result)

    document = pn.state.curdoc
    if document is None or document.session_context is None:
        attempt()()
        return
    threading.Thread(target=lambda: document.add_next_tick_callback(attempt()), daemon=True).start()
