"""Dashboard responsiveness in headless Chromium on this machine: the first screen (one HTTP request of ``/``, the
tabs and the first plots on screen), how soon every other tab is usable after its first click, the λ → redraw
latency (p50/p95), the live rollout frame rate at 64², and the same figures while a training job runs; then a
load test: N concurrent plain GETs of ``/``, then M browser sessions opened at once, while a browser session
streams a rollout (time to page; does the stream keep updating?). Medians over ``--repeats`` fresh pages. Prints
markdown.

    python benchmarks/dashboard.py [--repeats 5] [--latency 20] [--concurrent 10] [--sessions 5] [--load-only]
                                   [--loop-blocks]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from playwright.sync_api import sync_playwright
from report import main_publishing

ROOT = Path(__file__).resolve().parents[1]
TABS = ("Interpolant", "Sample", "Compare", "Train", "Rollout", "Super-resolution", "Jobs")
COARSE_SPECTRUM = "radial power spectrum of the snapshot"
PLOTS_JS = f"""() => {{
  const fig = window.Bokeh?.documents[0]?.get_model_by_name('{COARSE_SPECTRUM}');
  return fig != null && fig.renderers.some(r => r.name === 'data' && r.data_source.data.y.length > 0);
}}"""
USABLE_JS = """(name) => {  // the tab is open, its view has replaced the "Opening …" note, its pane is not loading
  const tabs = [...Bokeh.documents[0]._all_models.values()]
    .find(m => m.type === 'panel.models.tabs.Tabs' && m.tabs.some(t => t.title === 'Data'));
  const pane = tabs.tabs[tabs.active];
  const first = pane.child.children?.[0];
  return pane.title === name && first !== undefined && !(first.text ?? '').includes('Opening')
    && !pane.child.css_classes.includes('pn-loading');
}"""
SECTIONS = ("Drift per noise", "High dimension (paper 003)")  # the Interpolant's other sections, built on a click
SECTION_USABLE_JS = """(title) => {  // the section is open, built, and its pane is not loading
  const tabs = [...Bokeh.documents[0]._all_models.values()]
    .find(m => m.type === 'panel.models.tabs.Tabs' && m.tabs.some(t => t.title === title));
  const pane = tabs.tabs[tabs.active];
  const first = pane.child.children?.[0];
  return pane.title === title && first !== undefined && !(first.text ?? '').includes('Opening')
    && !pane.child.css_classes.includes('pn-loading');
}"""
WATCH_JS = """([title, line]) => {
  const fig = Bokeh.documents[0].get_model_by_name(title);
  const source = fig.renderers.find(r => r.name === line).data_source;
  window.__latency = null;
  if (!window.__watching) {
    source.properties.data.change.connect(() => {
      if (window.__latency === null) window.__latency = performance.now() - window.__start;
    });
    window.__watching = true;
  }
  window.__start = performance.now();
}"""


def start_server(data: Path, blocks: list[float] | None = None) -> tuple[subprocess.Popen, str, float]:
    """Start launch.py; with ``blocks``, in asyncio's debug mode, collecting the seconds of every event-loop
    callback that held the loop over 100 ms."""
    start = time.perf_counter()
    environment = {**os.environ, "PYTHONASYNCIODEBUG": "1"} if blocks is not None else None
    process = subprocess.Popen([sys.executable, str(ROOT / "launch.py"), "--port", "0", "--data-dir", str(data)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=environment)

    def drain() -> None:
        for line in process.stdout:
            held = re.search(r"Executing <.*> took (\d+\.\d+) seconds", line)
            if held and blocks is not None:
                blocks.append(float(held.group(1)))

    for line in process.stdout:
        match = re.search(r"running at (http://\S+)", line)
        if match:
            threading.Thread(target=drain, daemon=True).start()
            return process, match.group(1), time.perf_counter() - start
    raise RuntimeError("the dashboard did not start")


def seconds_to_get(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
    return time.perf_counter() - start


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{statistics.median(ordered):.0f} / {ordered[int(0.95 * (len(ordered) - 1))]:.0f}"


def first_screen(browser, url: str) -> tuple[float, float]:
    """Seconds from requesting the page to the tabs, and to the Data view's plots, on screen."""
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    start = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_selector(".bk-tab", timeout=60000)
    tabs = time.perf_counter() - start
    page.wait_for_function(PLOTS_JS, timeout=60000)
    plots = time.perf_counter() - start
    page.close()
    return tabs, plots


def tab_times(browser, url: str) -> dict[str, float]:
    """Seconds from the first click on each tab (and the Interpolant's other sections) to its view being usable,
    in one fresh page."""
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(url)
    page.wait_for_function(f"() => ({PLOTS_JS})() && Bokeh.documents[0].is_idle", timeout=60000)
    out = {}
    for tab in TABS:
        start = time.perf_counter()
        page.locator(".bk-tab", has_text=tab).click()
        page.wait_for_timeout(100)  # the overlay's patch
        page.wait_for_function(USABLE_JS, arg=tab, timeout=120000, polling=50)
        out[tab] = time.perf_counter() - start
        if tab == "Interpolant":
            for section in SECTIONS:
                start = time.perf_counter()
                page.locator(".bk-tab", has_text=section).click()
                page.wait_for_timeout(100)
                page.wait_for_function(SECTION_USABLE_JS, arg=section, timeout=120000, polling=50)
                out[f"Interpolant › {section}"] = time.perf_counter() - start
    page.close()
    return out


def latencies(page, repeats: int) -> list[float]:
    """Milliseconds from a λ key press in the Data view to the coarse spectrum's redraw in the browser."""
    page.locator(".bk-tab", has_text="Data").click()
    page.wait_for_function(USABLE_JS, arg="Data", timeout=60000)
    handle = page.locator(".bk-input-group", has_text="Diffusion scale").locator(".noUi-handle").first
    handle.focus()
    out = []
    page.evaluate("() => { window.__watching = false; }")
    for i in range(repeats):
        page.evaluate(WATCH_JS, [COARSE_SPECTRUM, "coarse"])
        handle.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")
        page.wait_for_function("() => window.__latency !== null", timeout=30000)
        out.append(float(page.evaluate("() => window.__latency")))
    return out


def start_rollout(page, steps: int = 100000) -> None:
    """A long rollout of the shipped pointwise emulator, counting redraws of the emulated field in the page."""
    page.locator(".bk-tab", has_text="Rollout").click()
    page.wait_for_function(USABLE_JS, arg="Rollout", timeout=60000)
    emulator = page.locator(".bk-input-group", has_text="Emulator checkpoint").locator("select").first
    emulator.select_option("runs/shipped-pointwise/checkpoint.pt")
    box = page.locator(".bk-input-group", has_text="Rollout steps").locator("input").first
    box.fill(str(steps))
    box.press("Enter")
    page.evaluate("""() => {
      window.__frames = 0;
      const fig = Bokeh.documents[0].get_model_by_name('emulator (member 0)');
      fig.renderers[0].data_source.properties.data.change.connect(() => window.__frames++);
    }""")
    page.get_by_role("button", name="Roll out").click()
    page.wait_for_function("() => window.__frames > 0", timeout=60000)


def frames_during(page, seconds: float, work=None) -> float:
    """Redraws per second of the emulated field over ``seconds`` (while ``work()`` runs, if given)."""
    start = page.evaluate("() => window.__frames")
    began = time.perf_counter()
    if work is not None:
        work()
    page.wait_for_timeout(max(0.0, seconds - (time.perf_counter() - began)) * 1000)
    return (page.evaluate("() => window.__frames") - start) / max(seconds, time.perf_counter() - began)


def sessions_while_streaming(browser, url: str, page, count: int) -> tuple[list[float], float]:
    """Open ``count`` browser sessions at once (their own context) while ``page`` streams a rollout: each one's
    seconds to its first plots, and the stream's redraws per second meanwhile."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    pages, times = [context.new_page() for _ in range(count)], []

    def open_all() -> None:
        start = time.perf_counter()
        for other in pages:
            other.goto(url, wait_until="commit")
        for other in pages:
            other.wait_for_function(PLOTS_JS, timeout=180000)
            times.append(time.perf_counter() - start)

    fps = frames_during(page, 1.0, open_all)
    context.close()
    return times, fps


def stop_rollout(page) -> None:
    page.get_by_role("button", name="Stop").click()
    page.get_by_text(re.compile(r"Rollout job \w+ cancelled")).first.wait_for(timeout=30000)


def start_training(page) -> None:
    page.locator(".bk-tab", has_text="Train").click()
    page.wait_for_function(USABLE_JS, arg="Train", timeout=60000)
    box = page.locator(".bk-input-group", has_text="Steps").locator("input").first
    box.fill("100000")
    box.press("Enter")
    page.get_by_role("button", name="Start").click()
    page.get_by_text("steps/s").first.wait_for(timeout=60000)


def measure(browser, url: str, repeats: int, latency_repeats: int, label: str) -> dict[str, str]:
    rows = {}
    gets = [seconds_to_get(url) for _ in range(repeats)]
    screens = [first_screen(browser, url) for _ in range(repeats)]
    tabs = [tab_times(browser, url) for _ in range(max(1, repeats // 2))]
    rows[f"GET / (s, median of {repeats}){label}"] = f"{statistics.median(gets):.2f}"
    rows[f"page → tabs on screen (s){label}"] = f"{statistics.median(s[0] for s in screens):.2f}"
    rows[f"page → first plots on screen (s){label}"] = f"{statistics.median(s[1] for s in screens):.2f}"
    for tab in tabs[0]:
        rows[f"{tab}: first click → usable (s){label}"] = f"{statistics.median(t[tab] for t in tabs):.2f}"
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(url)
    page.wait_for_function(PLOTS_JS, timeout=60000)
    rows[f"λ → redraw latency (ms p50 / p95){label}"] = percentiles(latencies(page, latency_repeats))
    page.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh pages per first-screen figure (default 5)")
    parser.add_argument("--latency", type=int, default=20, help="λ key presses per latency figure (default 20)")
    parser.add_argument("--concurrent", type=int, default=10, help="concurrent GETs in the load test (default 10)")
    parser.add_argument("--sessions", type=int, default=5, help="browser sessions opened at once (default 5)")
    parser.add_argument("--load-only", action="store_true", help="only the load test (streaming + GETs + sessions)")
    parser.add_argument("--loop-blocks", action="store_true",
                        help="serve in asyncio's debug mode and count the event-loop callbacks over 100 ms during the "
                             "load test (slows the server a little: run it apart from the other figures)")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    blocks = [] if args.loop_blocks else None
    process, url, ready = start_server(data, blocks)
    rows = {"launch.py ready (s)": f"{ready:.2f}"}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            if not args.load_only:
                rows |= measure(browser, url, args.repeats, args.latency, "")
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(url)
            page.wait_for_function(PLOTS_JS, timeout=60000)
            start_rollout(page)
            first_block = len(blocks or [])  # the load test's own, not the first page's warm-up
            rows["live field fps, 64² rollout"] = f"{frames_during(page, 8.0):.1f}"
            with ThreadPoolExecutor(args.concurrent) as pool:
                timings = []
                fps = frames_during(page, 1.0, lambda: timings.extend(pool.map(seconds_to_get,
                                                                                [url] * args.concurrent)))
            rows[f"{args.concurrent} concurrent GET /: slowest (s)"] = f"{max(timings):.2f}"
            rows[f"live field fps during the {args.concurrent} GETs"] = f"{fps:.1f}"
            times, fps = sessions_while_streaming(browser, url, page, args.sessions)
            rows[f"{args.sessions} browser sessions at once: first plots, fastest / slowest (s)"] = \
                f"{min(times):.2f} / {max(times):.2f}"
            rows[f"live field fps while the {args.sessions} sessions open"] = f"{fps:.1f}"
            if blocks is not None:
                held = sorted(blocks[first_block:], reverse=True)
                rows["event loop held > 100 ms during the load test: times; the longest (s)"] = \
                    f"{len(held)}; {', '.join(f'{t:.2f}' for t in held[:3]) or '-'}"
            stop_rollout(page)
            if not args.load_only:
                start_training(page)
                rows |= measure(browser, url, args.repeats, args.latency, ", training running")
            browser.close()
    finally:
        process.terminate()
        shutil.rmtree(data, ignore_errors=True)
    print("| measure | value |\n|---|---|")
    for name, value in rows.items():
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main_publishing("dashboard", main)
