"""Screenshots of the welcome, every dashboard tab (and the Interpolant's other sections) and a lesson at 1600×1000
for the README
(written to assets/dashboard-<tab>.png and dashboard-interpolant-<section>.png).

    python benchmarks/screenshots.py

Serves the dashboard on a fresh data folder, opens each tab in headless Chromium, waits until its view is drawn
(a rollout and a super-resolution are run first so their tabs show results), and saves the page.
"""
from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from dashboard import PLOTS_JS, SECTION_USABLE_JS, SECTIONS, USABLE_JS, start_server
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
TABS = ("Data", "Interpolant", "Sample", "Compare", "Train", "Rollout", "Super-resolution", "Jobs")


def slug(tab: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", tab.lower()).strip("-")


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="studio-shots-"))
    process, url, _ = start_server(data)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(url)
            page.wait_for_function(f"() => ({PLOTS_JS})() && Bokeh.documents[0].is_idle", timeout=60000)
            page.screenshot(path=str(ROOT / "assets" / "dashboard-welcome.png"))
            page.get_by_role("button", name="Got it").click()
            for tab in TABS:
                page.locator(".bk-tab", has_text=tab).click()
                page.wait_for_timeout(200)
                page.wait_for_function(USABLE_JS, arg=tab, timeout=120000)
                if tab == "Rollout":
                    page.get_by_role("button", name="Roll out").click()
                    page.get_by_text("No blow-up").wait_for(timeout=120000)
                if tab == "Super-resolution":
                    page.get_by_role("button", name="Super-resolve").click()
                    page.get_by_text(re.compile("Super-resolved λ")).wait_for(timeout=180000)
                page.wait_for_timeout(1500)
                page.screenshot(path=str(ROOT / "assets" / f"dashboard-{slug(tab)}.png"))
                if tab == "Interpolant":
                    for section in SECTIONS:
                        page.locator(".bk-tab", has_text=section).click()
                        page.wait_for_timeout(200)
                        page.wait_for_function(SECTION_USABLE_JS, arg=section, timeout=120000)
                        if section.startswith("High dimension"):
                            page.get_by_text("Here vp recovers").wait_for(timeout=120000)
                        page.wait_for_timeout(1500)
                        page.screenshot(path=str(ROOT / "assets" / f"dashboard-{slug(tab)}-{slug(section)}.png"))
            for _ in range(2):  # the second lesson: matched noise, the signal-to-noise map flat in k
                page.get_by_role("button", name="Next ▶").click()
            page.get_by_text("Lesson 2 of").wait_for(timeout=60000)
            page.wait_for_function(USABLE_JS, arg="Interpolant", timeout=120000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(ROOT / "assets" / "dashboard-lesson.png"))
            browser.close()
    finally:
        process.terminate()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
