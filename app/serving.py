"""How the dashboard is served. Who may talk to it: an explicit allowlist of ``host:port`` names, checked against
the Host header of every HTTP and websocket request (a DNS-rebinding page sends its own name there) and, by Bokeh,
against the Origin header of every websocket (a foreign page sends its own origin). And where each session's page
is built: on the page builder thread, so the event loop keeps serving the open pages meanwhile. See
docs/architecture.md.
"""
from __future__ import annotations

import asyncio
import logging
import re
import socket
import weakref
from typing import Callable

from bokeh.application.handlers import FunctionHandler
from bokeh.document import Document
from panel.io.application import Application
from panel.io.state import set_curdoc
from panel.template.base import BaseTemplate
from tornado.web import Application as TornadoApplication
from tornado.web import ErrorHandler

from app.busy import PAGE_BUILDER
from app.panel_internals import route_through, session_document

LOCAL_NAMES = ("localhost", "127.0.0.1")  # Bokeh's allowlist takes no bracketed IPv6 names


def free_port(address: str) -> int:
    """A port the OS reports free on ``address`` (so the allowlist can name it before the server starts)."""
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as probe:
        probe.bind((address.strip("[]"), 0))
        return probe.getsockname()[1]


def allowed_hosts(address: str, port: int, extra: list[str] = ()) -> list[str]:
    """``host:port`` names a browser may use to reach the server: the loopback names and ``address`` on ``port``,
    plus the user's ``--allow-websocket-origin`` entries (``host`` or ``host:port``; a bare host gets ``port``)."""
    names = {f"{name}:{port}" for name in LOCAL_NAMES}
    if ":" not in address:
        names.add(f"{address}:{port}")
    names.update(entry if re.search(r":\d+$", entry) else f"{entry}:{port}" for entry in extra)
    return sorted(name.lower() for name in names)


def refuse_foreign_hosts(application: TornadoApplication, allowed: list[str]) -> None:
    """Answer 403 to any request whose Host header is not in ``allowed``, before a handler (or a session) starts."""
    permitted = frozenset(allowed)

    def refuse(request):
        if request.host.lower() not in permitted:
            return application.get_handler_delegate(request, ErrorHandler, {"status_code": 403})
        return None

    route_through(application, refuse)


class BuiltAside(Application):
    """Panel's application of one page function, ``make_page() -> template``, whose documents are built on the page
    builder thread while the session is being created, instead of on the event loop: ten pages requested at once
    no longer hold every open page's live stream for seconds. Panel's own per-session setup stays on the loop."""

    def __init__(self, make_page: Callable[[], BaseTemplate], *, title: str):
        self.make_page, self.title = make_page, title
        self.built: weakref.WeakSet[Document] = weakref.WeakSet()
        super().__init__(FunctionHandler(self._on_loop))

    async def on_session_created(self, session_context) -> None:
        await super().on_session_created(session_context)
        document = session_document(session_context)
        try:
            await asyncio.wrap_future(PAGE_BUILDER.submit(self._build, document))
        except Exception as error:  # noqa: BLE001 — built again on the loop, where Panel shows the traceback
            logging.getLogger(__name__).warning("page built aside failed (%s): building it on the loop", error)
            document.clear()

    def _build(self, document: Document) -> None:
        """On the page builder: the page's models, under Panel's per-thread current document (Bokeh's global
        ``curdoc`` stack is left alone: the loop may be using it)."""
        with set_curdoc(document):
            self.make_page().server_doc(document, title=self.title)
        self.built.add(document)

    def _on_loop(self, document: Document) -> None:
        """Bokeh's handler, run by ``initialize_document`` on the loop: the page is there already, unless building
        it aside failed."""
        if document not in self.built:
            self.make_page().server_doc(document, title=self.title)
