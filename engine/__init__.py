"""Emulator Studio engine: noise spectra, interpolant schedules, samplers, models and data.

Pure PyTorch; never imports the dashboard (``app``), Panel, Bokeh or HoloViews. The layers and the path of a
request: docs/architecture.md; the methods and papers: docs/science.md.
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("emulator-studio")
except PackageNotFoundError:  # running from a source tree that was not pip-installed
    __version__ = "0.0.0+source"

from engine.errors import EngineError

__all__ = ["EngineError", "__version__"]
