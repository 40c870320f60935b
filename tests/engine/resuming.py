"""The interrupt-then-resume drill shared by the solvers' tests (engine.data.runs.run_with_saves under each)."""
from pathlib import Path
from typing import Callable

import pytest


def interrupt_and_resume(simulate: Callable, config, state: Path, at: int):
    """Run ``simulate(config, callback, state)``, stop it with Ctrl-C once save ``at`` is reported, check that it
    left its state file, and run it again; returns the second run's events and dataset."""
    def interrupt(event):
        if event["step"] == at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        simulate(config, interrupt, state)
    assert state.exists()
    events = []
    return events, simulate(config, events.append, state)
