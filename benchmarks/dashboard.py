"""Dashboard responsiveness in headless Chromium: cold start, interaction latency (p50/p95) with and without a
training job running, and frames per second of the live rollout field at 64² and 128². Prints markdown.

    python benchmarks/dashboard.py [--repeats 20]

Uses a fresh data folder; for 128² it generates a small 128² Kolmogorov set and trains a pointwise emulator for
a few steps (its quality does not matter for the frame rate).
"""
from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
COARSE_SPECTRUM = "radial power spectrum of the snapshot"
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


def start_server(data: Path) -> tuple[subprocess.Popen, str, float]:
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(ROOT / "launch.py"), "--port", "0", "--data-dir", str(data)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    for line in process.stdout:
        match = re.search(r"running at (http://\S+)", line)
        if match:
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
            return process, match.group(1), time.perf_counter() - start
    raise RuntimeError("the dashboard did not start")


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{statistics.median(ordered):.0f} / {ordered[int(0.95 * (len(ordered) - 1))]:.0f}"


def latencies(page, repeats: int) -> list[float]:
    """Milliseconds from a λ key press in the Data view to the coarse spectrum's redraw in the browser."""
    page.locator(".bk-tab", has_text="Data").click()
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


def rollout_fps(page, checkpoint: str, seconds: float = 8.0) -> tuple[float, float]:
    """Redraws per second of the emulated field while a long rollout of ``checkpoint`` runs, and the rollout's
    own steps per second (from its status line): the stream can show at most min(steps/s, 30) frames."""
    page.locator(".bk-tab", has_text="Rollout").click()
    emulator = page.locator(".bk-input-group", has_text="Emulator checkpoint").locator("select").first
    emulator.select_option(checkpoint)
    steps = page.locator(".bk-input-group", has_text="Rollout steps").locator("input").first
    steps.fill("100000")
    steps.press("Enter")
    page.evaluate("""() => {
      window.__frames = 0;
      const fig = Bokeh.documents[0].get_model_by_name('emulator (member 0)');
      fig.renderers[0].data_source.properties.data.change.connect(() => window.__frames++);
    }""")
    page.get_by_role("button", name="Roll out").click()
    page.wait_for_function("() => window.__frames > 0", timeout=60000)
    start, first_step = page.evaluate("() => window.__frames"), _rollout_step(page)
    page.wait_for_timeout(seconds * 1000)
    frames, last_step = page.evaluate("() => window.__frames") - start, _rollout_step(page)
    page.get_by_role("button", name="Stop").click()
    page.get_by_text(re.compile(r"Rollout job \w+ cancelled")).first.wait_for(timeout=30000)
    return frames / seconds, (last_step - first_step) / seconds


def _rollout_step(page) -> int:
    text = page.get_by_text(re.compile(r"Rollout job \w+: step \d+")).first.inner_text()
    return int(re.search(r"step (\d+)", text).group(1))


def start_training(page) -> None:
    page.locator(".bk-tab", has_text="Train").click()
    page.get_by_role("button", name="Start").click()
    page.get_by_text("steps/s").first.wait_for(timeout=60000)


def make_128(data: Path) -> None:
    """A 128² Kolmogorov set and a briefly trained pointwise emulator on it, in the data folder."""
    run = [sys.executable, "-m", "engine", "--data-dir", str(data)]
    subprocess.run([*run, "data", "kolmogorov", "--size", "128", "--trajectories", "1", "--snapshots", "20",
                    "--spin-up", "5", "--out", "kolmogorov-128.nc"], check=True, capture_output=True)
    subprocess.run([*run, "train", "--task", "pointwise", "--data", "kolmogorov-128.nc", "--out", "runs/pointwise-128",
                    "--steps", "5", "--batch-size", "2"], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    process, url, ready = start_server(data)
    rows = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            start = time.perf_counter()
            page.goto(url)
            page.wait_for_function(f"() => window.Bokeh && Bokeh.documents.length > 0 && "
                                   f"Bokeh.documents[0].get_model_by_name('{COARSE_SPECTRUM}') !== null", timeout=60000)
            rows["first page rendered (s)"] = f"{time.perf_counter() - start:.2f}"
            rows["λ → redraw latency, idle (ms p50 / p95)"] = percentiles(latencies(page, args.repeats))
            fps, rate = rollout_fps(page, "runs/shipped-pointwise/checkpoint.pt")
            rows["live field fps, 64² rollout (pointwise emulator)"] = f"{fps:.1f} (rollout {rate:.0f} steps/s)"
            start_training(page)
            rows["λ → redraw latency, training running (ms p50 / p95)"] = percentiles(latencies(page, args.repeats))
            make_128(data)
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.goto(url)
            page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0", timeout=60000)
            select = page.locator(".bk-input-group", has_text="Dataset").locator("select").first
            select.select_option("kolmogorov-128.nc")
            page.get_by_text("128²").first.wait_for(timeout=60000)
            page.locator(".bk-tab", has_text="Rollout").click()
            fps, rate = rollout_fps(page, "runs/pointwise-128/checkpoint.pt")
            rows["live field fps, 128² rollout (pointwise emulator)"] = f"{fps:.1f} (rollout {rate:.0f} steps/s)"
            browser.close()
    finally:
        process.terminate()
        shutil.rmtree(data, ignore_errors=True)
    print(f"| measure | value |\n|---|---|\n| launch.py ready (s) | {ready:.2f} |")
    for name, value in rows.items():
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
