"""Every use of a private Panel, Bokeh or Tornado API in the app, behind one door: each function says why the
private name is needed and which public way was tried. ``pyproject.toml`` pins ``panel`` to the minor versions
listed in ``TESTED_PANEL`` (``tests/app/test_panel_internals.py`` fails with a clear message on any other), so a
Panel release that renames one of these breaks here, in one file, and in CI, not silently in a browser.
"""
from __future__ import annotations

import logging
from typing import Callable

import panel as pn
from tornado.web import Application as TornadoApplication

TESTED_PANEL = ("1.9",)  # the minor versions these names were checked against


def rendered_models(obj) -> dict:
    """``obj``'s Bokeh models by the id of the page root they were made for (``Viewable._models``). Why: to make
    a view's models on the page builder thread, the app must know which pages already have them; Panel exposes
    ``get_root`` (a new root, not the existing page's models) and nothing that lists a live object's pages."""
    return getattr(obj, "_models", {})


def make_model(obj, document, root, parent, comm) -> None:
    """Make ``obj``'s Bokeh model for an existing page (``Viewable._get_model``). Why: ``get_root`` makes a new
    root document; putting a ready object into a live layout needs its model made for that page's root, which is
    what Panel does itself when a layout changes, on the event loop."""
    obj._get_model(document, root, parent, comm)


def drop_model(obj, root) -> None:
    """Forget ``obj``'s model for one page root (``Viewable._cleanup``), so its widgets stop following their
    parameters there. Why: Panel 1.9 has no public way to release one page's model of an object shown on
    several (it releases them when a session is destroyed)."""
    obj._cleanup(root)


def page_of(root_id: str) -> tuple:
    """(viewable, root, document, comm) of the page with root ``root_id`` (``pn.state._views``), Nones when it is
    gone. Why: the models a layout has tell their root id only; ``pn.state`` has no public lookup by id."""
    return pn.state._views.get(root_id, (None, None, None, None))


def session_document(session_context):
    """The Bokeh document of a session being created (``BokehSessionContext._document``). Why: to build the page
    off the event loop before Bokeh's handler runs, ``on_session_created`` needs the document; the public
    ``session_context`` offers only the request and id there (``with_locked_document`` runs on the loop)."""
    return session_context._document


def tornado_application(server) -> TornadoApplication:
    """The Tornado application behind ``pn.serve(..., start=False)`` (``Server._tornado``). Why: a Host-header
    check must run before every handler, HTTP and websocket alike; Bokeh's ``websocket_origin`` checks the Origin
    of websockets only, and ``pn.serve`` takes no Tornado transform or middleware."""
    return server._tornado


def route_through(application: TornadoApplication, refuse: Callable) -> None:
    """Answer every request for which ``refuse(request)`` returns a handler with that handler, else route it as
    usual, by wrapping ``Application.find_handler`` (public in Tornado, but replaced on the instance here). Why:
    Tornado's host-pattern routing (``add_handlers``) adds routes; it cannot refuse the routes Bokeh added."""
    route = application.find_handler

    def find_handler(request, **kwargs):
        return refuse(request) or route(request, **kwargs)

    application.find_handler = find_handler


def quiet_callback_log(drop: Callable) -> None:
    """Leave out of the server's log Panel's traceback of a widget callback whose exception ``drop(exception)``
    says is handled (logged by ``panel.reactive`` before it reaches ``pn.config.exception_handler``). Why: Panel
    1.9 logs every failed widget update itself; a refused input, told to its page, is not a server error."""
    logging.getLogger("panel.reactive").addFilter(_Handled(drop))


class _Handled(logging.Filter):
    """Drops the records of exceptions ``drop`` says are handled."""

    def __init__(self, drop: Callable):
        super().__init__()
        self.drop = drop

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and record.exc_info[1] is not None and self.drop(record.exc_info[1]))
