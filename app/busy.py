"""Busy states: a loading overlay on what a slow recompute will change, sent before the work starts."""
from __future__ import annotations

import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Callable

import panel as pn
from panel.io.state import set_curdoc

from app.panel_internals import drop_model, make_model, page_of, rendered_models

SEND_MS = 40  # the pause that lets the overlay's patch leave before the work blocks the session's thread
PAGE_BUILDER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="page-builder")
"""One thread builds every session's page and views, in turn: the event loop then shares the GIL with one busy
thread, not one per opening page, so the open pages' live streams keep most of their rate while others open."""


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


def in_background(work: Callable[[], object], draw: Callable[[object], None], fail: Callable[[str], None], *,
                  pool: Executor | None = None) -> None:
    """Run ``work`` in a thread of its own, or queued on ``pool`` (the page stays live), then ``draw(result)`` or
    ``fail(one-line reason)`` on the session's thread (Bokeh models are edited there only); without a session (a
    test driving a view from Python) it all runs at once."""
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
    def run() -> None:
        document.add_next_tick_callback(attempt())

    if pool is None:
        threading.Thread(target=run, daemon=True).start()
    else:
        pool.submit(run)


def modelled_for(container: pn.layout.ListLike, objects: list) -> list:
    """``objects`` as Panel objects whose Bokeh models, for every page ``container`` is shown in, are made here
    (the page builder thread): put into ``container`` on the session's thread, they are linked in as they are, so
    the event loop spends no time building them (through ``app.panel_internals``: Panel's model registry); what
    cannot be made here (or is shown already) is left to the session's thread, as without this."""
    ready = [pn.panel(obj) for obj in objects]
    for root, parent, document, comm in _pages(container):
        with set_curdoc(document):
            for obj in ready:
                if root.ref["id"] in rendered_models(obj):
                    continue
                try:
                    make_model(obj, document, root, parent, comm)
                except Exception:  # noqa: BLE001 — dropped: the session's thread builds it as usual
                    drop_model(obj, root)
    return ready


def release(container: pn.layout.ListLike, objects: list) -> None:
    """Drop the models ``modelled_for`` made for ``objects`` that were not put into ``container`` after all (their
    widgets stop following their parameters)."""
    for root, *_ in _pages(container):
        for obj in objects:
            if obj not in container.objects and root.ref["id"] in rendered_models(obj):
                drop_model(obj, root)


def _pages(container: pn.layout.ListLike) -> list[tuple]:
    """(root model, ``container``'s model, document, comm) of every page ``container`` is shown in."""
    pages = []
    for root_id, (model, _) in list(rendered_models(container).items()):
        _, root, document, comm = page_of(root_id)
        if root is not None:
            pages.append((root, model, document, comm))
    return pages
