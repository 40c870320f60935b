"""Who may talk to the dashboard's server: an explicit allowlist of ``host:port`` names, checked against the Host
header of every HTTP and websocket request (a DNS-rebinding page sends its own name there) and, by Bokeh, against
the Origin header of every websocket (a foreign page sends its own origin). See docs/architecture.md.
"""
from __future__ import annotations

import re
import socket

from tornado.web import Application, ErrorHandler

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


def refuse_foreign_hosts(application: Application, allowed: list[str]) -> None:
    """Answer 403 to any request whose Host header is not in ``allowed``, before a handler (or a session) starts."""
    permitted = frozenset(allowed)
    route = application.find_handler

    def find_handler(request, **kwargs):
        if request.host.lower() not in permitted:
            return application.get_handler_delegate(request, ErrorHandler, {"status_code": 403})
        return route(request, **kwargs)

    application.find_handler = find_handler
