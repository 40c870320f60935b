"""No other web page can talk to the server: foreign Host headers (DNS rebinding) and foreign websocket Origins get
403, on the default server and on ``--address 127.0.0.1``; the page's own origin works. And pages are built off the
event loop."""
import asyncio
import base64
import http.client
import os
import queue
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import panel as pn
import pytest

from app.serving import BuiltAside, allowed_hosts

ROOT = Path(__file__).resolve().parents[2]


def _get(port: int, host: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", "/", headers={"Host": host})
    response = connection.getresponse()
    return response.status, response.read().decode("utf-8", "replace")


def _handshake(port: int, host: str, origin: str, token: str) -> int:
    """The status of a websocket opening handshake on /ws (101 when accepted)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", "/ws", headers={
        "Host": host, "Origin": origin, "Upgrade": "websocket", "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Protocol": f"bokeh, {token}"})
    status = connection.getresponse().status
    connection.close()
    return status


def _check(port: int, own_host: str) -> None:
    status, page = _get(port, own_host)
    assert status == 200
    token = re.search(r'"token":"([^"]+)"', page).group(1)
    assert _get(port, f"evil.example:{port}")[0] == 403  # a rebinding page's Host
    assert _handshake(port, own_host, "http://evil.example", token) == 403  # a foreign page's websocket
    assert _handshake(port, f"evil.example:{port}", f"http://evil.example:{port}", token) == 403  # rebinding
    assert _handshake(port, own_host, f"http://{own_host}", token) == 101  # the dashboard's own page


def test_the_default_server_refuses_foreign_hosts_and_origins(server_url):
    port = urlparse(server_url).port
    _check(port, f"localhost:{port}")
    _check(port, f"127.0.0.1:{port}")


def _serve(tmp_path, *flags):
    """Start launch.py with ``flags`` on a free port; yields the port."""
    process = subprocess.Popen([sys.executable, str(ROOT / "launch.py"), "--port", "0", "--data-dir", str(tmp_path),
                                *flags], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        url = next((m.group(1) for line in process.stdout if (m := re.search(r"running at (http://\S+)", line))), None)
        assert url, "the server did not start"
        yield urlparse(url).port
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_server_on_127_0_0_1_refuses_them_too(tmp_path):
    for port in _serve(tmp_path, "--address", "127.0.0.1"):
        _check(port, f"127.0.0.1:{port}")


def test_auth_sends_every_browser_to_a_login_page_first(tmp_path):
    for port in _serve(tmp_path, "--auth", "correct-horse"):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("GET", "/", headers={"Host": f"localhost:{port}"})
        response = connection.getresponse()
        assert response.status == 302 and "login" in response.getheader("Location")


def test_a_short_password_is_refused_with_one_line(capsys):
    sys.path.insert(0, str(ROOT))
    from launch import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--auth", "short"])
    assert "at least 8 characters" in capsys.readouterr().err


@pytest.mark.parametrize("extra, expected", [([], {"localhost:8000", "127.0.0.1:8000"}),
                                             (["lab.example.org"], {"lab.example.org:8000"}),
                                             (["lab.example.org:443"], {"lab.example.org:443"})])
def test_the_allowlist_names_loopback_the_address_and_what_the_user_adds(extra, expected):
    assert expected <= set(allowed_hosts("localhost", 8000, extra))
    assert "evil.example:8000" not in allowed_hosts("localhost", 8000, extra)


def _serve_in_process(application) -> tuple[int, Callable[[], None]]:
    """Serve ``application`` at ``/`` from a thread of this process, on an event loop of its own (the browser tests'
    driver runs one on this thread); returns its port and a stop function."""
    started: queue.Queue = queue.Queue()

    def run() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        server = pn.serve({"/": application}, port=0, start=False, show=False)
        server.start()
        started.put(server)
        server.io_loop.start()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    server = started.get(timeout=60)

    def stop() -> None:
        server.io_loop.add_callback(server.io_loop.stop)
        thread.join(timeout=10)
        server.stop()

    return server.port, stop


def test_pages_are_built_on_the_page_builder_thread_and_a_failed_build_is_retried_on_the_loop():
    calls = []

    def page():
        calls.append(threading.current_thread().name)
        if len(calls) == 2:
            raise RuntimeError("this build fails")
        return pn.template.BootstrapTemplate(title="t", main=[pn.pane.Markdown("built aside")])

    port, stop = _serve_in_process(BuiltAside(page, title="t"))
    try:
        first = _get(port, f"localhost:{port}")
        second = _get(port, f"localhost:{port}")  # built aside fails: built again on the loop
    finally:
        stop()
    assert first[0] == second[0] == 200
    assert calls[0].startswith("page-builder") and calls[1].startswith("page-builder")
    assert len(calls) == 3 and not calls[2].startswith("page-builder")
