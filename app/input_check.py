"""Inputs a config refuses are explained, not silently put back.

A control rendered from an ``engine.config`` class (``pn.Param``) sets its parameter; a value out of bounds or of
the wrong type makes param raise, and Panel puts the control back to the parameter's value, with no word on the page.
``explain(error)`` turns param's refusal into one line that names the control as the page labels it and the rule it
broke; ``handle_callback_error`` (Panel's ``exception_handler`` for every session, installed by ``app.dashboard``)
shows that line to the session whose input it was, as a warning, and logs any other error as Panel would.
"""
from __future__ import annotations

import logging
import re
import weakref

import panel as pn
import param

from engine import config

REFUSAL = re.compile(r"parameter '(?:(?P<owner>\w+)\.)?(?P<name>\w+)' (?P<rule>must .+?)\.?$")
SHOWN_MS = 10_000  # how long the warning stays
TYPE_WORDS = {"str": "text", "float": "a fraction", "NoneType": "empty"}  # "must be an integer, not text"

_sessions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Bokeh document → its notifications


def explain(error: BaseException) -> str | None:
    """``Steps must be at least 1, not -5; the previous value is kept.`` for param's refusal of an input, else
    None."""
    match = REFUSAL.search(str(error)) if isinstance(error, (ValueError, TypeError)) else None
    if match is None:
        return None
    rule = re.sub(r"<class '(\w+)'>", lambda kind: TYPE_WORDS.get(kind[1], kind[1]), match["rule"])
    return f"{label_of(match['owner'], match['name'])} {rule}; the previous value is kept."


def label_of(owner: str | None, name: str) -> str:
    """The label a parameter's control shows: its config class's, else param's default for the name."""
    cls = getattr(config, owner or "", None)
    if isinstance(cls, type) and issubclass(cls, param.Parameterized) and name in cls.param:
        return cls.param[name].label
    return name.replace("_", " ").capitalize()


def watch_session(notifications) -> None:
    """Show refused inputs of the current session (``pn.state.curdoc``) in its ``notifications`` area."""
    if pn.state.curdoc is not None:
        _sessions[pn.state.curdoc] = notifications


def handle_callback_error(error: BaseException) -> None:
    """Panel's handler of a callback's exception: a refused input is told to its page; anything else is logged
    with its traceback (the server keeps running either way)."""
    message = explain(error)
    notifications = _sessions.get(pn.state.curdoc) if pn.state.curdoc is not None else None
    if message is not None and notifications is not None:
        notifications.warning(message, duration=SHOWN_MS)
        return
    logging.getLogger("app").error("a callback failed", exc_info=error)


def checked(widget_type) -> dict:
    """A number box (``pn.widgets.IntInput``, ``FloatInput``) for ``pn.Param`` that passes every value typed to its
    parameter: with the bounds in the browser, a value out of them stayed in the box but never reached the config,
    so a job silently ran with the old one; without, the config refuses it and ``explain`` says why."""
    return {"type": widget_type, "start": None, "end": None}
