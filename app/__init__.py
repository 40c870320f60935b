"""Emulator Studio dashboard (Panel). Renders the engine's configs and results; holds no science.

Where it sits among the layers, and the path one request takes: docs/architecture.md.

Text panes do not turn words into links: Panel's markdown-it preset links anything shaped like a host name, and
our file and run names are (``kolmogorov-64-….nc`` became a link to a site in New Caledonia, ``….pt`` to one in
Portugal).
"""
import panel as pn

NO_LINKS = {"linkify": False}
for _pane in (pn.pane.Markdown, pn.pane.Alert):
    _pane.param.renderer_options.default = NO_LINKS
