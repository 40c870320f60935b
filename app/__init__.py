"""Emulator Studio dashboard (Panel). Renders the engine's configs and results; holds no science."""
