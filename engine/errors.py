"""The one exception type the engine raises for bad user input (files, shapes, options, NaNs)."""


class EngineError(ValueError):
    """A user-facing error: its message is one line that says what is wrong and how to fix it."""
