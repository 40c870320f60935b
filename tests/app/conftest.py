"""Browser fixtures: the real dashboard served by ``launch.py`` and driven in the system Chromium."""
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
# Tornado's note of a message to a page that closed meanwhile: the browser tests close pages mid-stream
PAGE_CLOSED = ("tornado.iostream.StreamClosedError", "tornado.websocket.WebSocketClosedError")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        message = "no Chromium on PATH: install Debian's 'chromium' package to run the browser tests"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(f"SKIPPED LOUDLY: {message}")
    return {**browser_type_launch_args, "executable_path": executable,
            "args": ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run"]}


@pytest.fixture(scope="session")
def server_url(tmp_path_factory):
    """Start ``python launch.py --port 0`` with a fresh data folder; yields its URL."""
    data = tmp_path_factory.mktemp("studio-data")
    process = subprocess.Popen([sys.executable, str(ROOT / "launch.py"), "--port", "0", "--data-dir", str(data)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    deadline, url, lines = time.monotonic() + 60, None, []
    while time.monotonic() < deadline and url is None:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        lines.append(line)
        match = re.search(r"running at (http://\S+)", line)
        url = match.group(1) if match else None
    if url is None:
        process.kill()
        pytest.fail("the dashboard did not start:\n" + "".join(lines))
    # keep reading the server's output: a full pipe would block the server on its next log line
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / "server.log", "w")
    log.writelines(lines)
    raised = []  # the exception line that ends each traceback the server prints

    def follow() -> None:
        for line in process.stdout:
            log.write(line)
            log.flush()
            if re.match(r"[\w.]+(Error|Exception)(:|$)", line):
                raised.append(line.strip())

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    yield url
    process.terminate()
    process.wait(timeout=10)
    reader.join(timeout=10)
    unexpected = [line for line in raised if not line.startswith(PAGE_CLOSED)]
    assert not unexpected, f"the server raised while the browser tests ran: {unexpected[:3]} (see server.log)"
    log.close()
    noisy = [line.strip() for line in (ARTIFACTS / "server.log").read_text().splitlines()
             if "BokehUserWarning" in line or "leaked semaphore" in line]
    assert not noisy, f"the server's log is not clean: {noisy[:3]} (see server.log)"


@pytest.fixture()
def artifacts():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
