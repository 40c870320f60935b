"""Whole-view PNG export, done in the browser: every plot of the active tab is rendered by Bokeh's own
exporter and drawn onto one canvas at its place on the page, on white, then downloaded. No server round trip,
no webdriver."""
from __future__ import annotations

import panel as pn

SAVE_VIEW_JS = """
const is_plot = (view) => "renderers" in view.model && "toolbar" in view.model && typeof view.export === "function";
const found = [], seen = new Set();
const descend = (view) => {
  if (view == null || seen.has(view)) { return; }
  seen.add(view);
  if (is_plot(view)) { found.push(view); }
  for (const child of view.children()) { descend(child); }
};
descend(Bokeh.index.find_one(tabs.tabs[tabs.active].child));  // the active tab only: the others stay laid out
const plots = found.map((view) => [view, view.el.getBoundingClientRect()])
  .filter(([, rect]) => rect.width > 0 && rect.height > 0);
if (plots.length === 0) { return; }
const left = Math.min(...plots.map(([, r]) => r.left)), top = Math.min(...plots.map(([, r]) => r.top));
const right = Math.max(...plots.map(([, r]) => r.right)), bottom = Math.max(...plots.map(([, r]) => r.bottom));
const ratio = window.devicePixelRatio || 1;
const canvas = document.createElement("canvas");
canvas.width = Math.ceil((right - left) * ratio);
canvas.height = Math.ceil((bottom - top) * ratio);
const context = canvas.getContext("2d");
context.fillStyle = "white";
context.fillRect(0, 0, canvas.width, canvas.height);
for (const [view, rect] of plots) {
  const layer = view.export("png", true);
  context.drawImage(layer.canvas, (rect.left - left) * ratio, (rect.top - top) * ratio, rect.width * ratio,
                    rect.height * ratio);
}
const title = tabs.tabs[tabs.active].title.toLowerCase().replace(/[^a-z0-9]+/g, "-");
canvas.toBlob((blob) => {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `emulator-studio-${title}.png`;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}, "image/png");
"""


def save_view_button(tabs: pn.Tabs) -> pn.widgets.Button:
    """A button that downloads the plots of the active tab as one PNG (``emulator-studio-<tab>.png``)."""
    button = pn.widgets.Button(label="Save view as PNG", color="light", width=150)
    button.js_on_click(args={"tabs": tabs}, code=SAVE_VIEW_JS)
    return button
