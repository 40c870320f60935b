"""Emulator Studio dashboard (Panel). Renders the engine's configs and results; holds no science.

Where it sits among the layers, and the path one request takes: docs/architecture.md.
"""
