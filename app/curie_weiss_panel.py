"""Paper 003's Curie–Weiss model on the Interpolant tab: which features (the phase, the spins) survive a few Euler
steps on each schedule, the mean magnetization M_t/d along the way, and how the steps needed grow with d. Every
run is O(samples · d) per step, so it runs on demand in a thread (the page stays live) and sweeps are cached."""
from __future__ import annotations

import functools

import numpy as np
import panel as pn
import param

from app.busy import in_background
from app.input_check import checked
from app.plots import COLUMN, CurvePlot, draw_steps_against_d
from engine.config import CurieWeissConfig
from engine.curie_weiss import (
    MAGNETIZATION_TOLERANCE,
    SPIN_TOLERANCE,
    CurieWeiss,
    generate_spins,
    phase_tolerance,
    recovered_features,
    spin_dimension_sweep,
    spin_statistics,
)
from engine.mixture import MIXTURE_SCHEDULES

TABLE_HEADER = "| schedule | p̂ | \\|M\\|/d | ⟨x²⟩ |\n|---|---|---|---|\n"  # the pipes of |M| escaped
SWEEP_DIMENSIONS = (100, 1000, 10_000)


@functools.lru_cache(maxsize=8)
def cached_spin_sweep(p: float, coupling: float, dilation_k: float) -> dict:
    """``engine.curie_weiss.spin_dimension_sweep`` once per (p, J, k) per server."""
    return spin_dimension_sweep(p=p, coupling=coupling, dimensions=SWEEP_DIMENSIONS, dilation_k=dilation_k)


def verdict(kind: str, features: dict[str, bool]) -> str:
    """"vp recovers the phase and the spins" / "… recovers neither", read off the ✓ marks of a table row."""
    got = [name for name, recovered in features.items() if recovered]
    return f"{kind} recovers {' and '.join(got) if got else 'neither'}"


def mark(recovered: bool) -> str:
    return "✓" if recovered else "✗"


class CurieWeissPanel(pn.viewable.Viewer):
    """Run Euler on the exact Curie–Weiss drift for VP, VE and their dilations; tabulate p̂, |M|/d and ⟨x²⟩."""

    config = param.ClassSelector(class_=CurieWeissConfig, doc="paper 003's Curie–Weiss spins")

    def __init__(self, **params):
        super().__init__(config=CurieWeissConfig(name="Curie–Weiss spins (paper 003)"), **params)
        self.table = pn.pane.Markdown("Press **Run Curie–Weiss** to generate spins with each schedule.",
                                      name="curie-weiss-table")
        self.magnetization = CurvePlot("mean magnetization M_t/d over t (Curie–Weiss)",
                                       ["truth (2p − 1)m", *MIXTURE_SCHEDULES], "t", "mean M/d", log_x=False,
                                       log_y=False, empty="press Run: the magnetization along each schedule",
                                       row_item=False)
        self.sweep = CurvePlot("Euler steps to recover the phase and the spins vs d", list(MIXTURE_SCHEDULES),
                               "dimension d", "steps", markers=tuple(MIXTURE_SCHEDULES),
                               empty="press Sweep: steps per schedule vs d", row_item=False)
        self.run_button = pn.widgets.Button(label="Run Curie–Weiss", width=200, color="primary")
        self.sweep_button = pn.widgets.Button(label="Sweep d = 10² … 10⁴ (minutes)", width=240)
        self.run_button.on_click(lambda _: self.start_run())
        self.sweep_button.on_click(lambda _: self.start_sweep())
        self.sweep_note = pn.pane.Markdown("", name="curie-weiss-sweep-note")

    def start_run(self) -> None:
        cfg = self.config
        self.run_button.loading = True
        model = CurieWeiss(cfg.d, cfg.p, cfg.coupling)
        settings = (cfg.steps, cfg.count, cfg.dilation_k)
        in_background(lambda: {kind: generate_spins(model, kind, settings[0], settings[1], dilation_k=settings[2])
                               for kind in MIXTURE_SCHEDULES},
                      lambda runs: self._draw_run(model, settings[0], settings[1], runs), self._failed)

    def _draw_run(self, model: CurieWeiss, steps: int, count: int, runs: dict) -> None:
        """The table (✓ within the tolerances of ``recovered_features``), its verdicts, and M_t/d per schedule."""
        m, times = model.magnetization, np.linspace(0.0, 1.0, steps + 1)
        self.magnetization.update("truth (2p − 1)m", [0.0, 1.0], [(2 * model.p - 1) * m] * 2)
        rows, verdicts = [], []
        for kind, run in runs.items():
            stats = spin_statistics(run.x)
            phase, spins = recovered_features(model, stats)
            self.magnetization.update(kind, times, run.magnetization.mean(-1).double().numpy())
            rows.append(f"| {kind} | {stats.p_hat:.3f} {mark(phase)} | {stats.magnetization:.3f} | "
                        f"{stats.spin_square:.3f} {mark(spins)} |")
            verdicts.append(verdict(kind, {"the phase": phase, "the spins": spins}))
        self.table.object = (
            f"**Curie–Weiss, d = {model.d}, J = {model.coupling:g}, {steps} Euler steps.** Phase weight p̂ "
            f"(high-level: share with M > 0) and the spins (low-level: |M|/d = m = {m:.3f} and ⟨x²⟩ = 1 for ±1 "
            f"spins); ✓ within {phase_tolerance(model.p, count):.3g} of p, and {MAGNETIZATION_TOLERANCE} of m "
            f"with ⟨x²⟩ within {SPIN_TOLERANCE} of 1.\n\n{TABLE_HEADER}"
            f"| truth | {model.p:.3f} | {m:.3f} | 1 |\n" + "\n".join(rows) + f"\n\nHere {'; '.join(verdicts)}.")
        self.run_button.loading = False

    def start_sweep(self) -> None:
        cfg = self.config
        self.sweep_button.loading = True
        key = (cfg.p, cfg.coupling, cfg.dilation_k)
        in_background(lambda: cached_spin_sweep(*key), lambda steps: self._draw_sweep(key, steps), self._failed)

    def _failed(self, message: str) -> None:
        self.table.object = f"**Curie–Weiss could not run:** {message}"
        self.run_button.loading = self.sweep_button.loading = False

    def _draw_sweep(self, key: tuple, steps: dict) -> None:
        draw_steps_against_d(self.sweep, SWEEP_DIMENSIONS, steps)
        self.sweep_note.object = (f"p = {key[0]}, J = {key[1]:g}, k = {key[2]}, 200 samples: steps that recover the "
                                  "phase and the spins (✓ as in the table).")
        self.sweep_button.loading = False

    def controls(self) -> list:
        return [pn.Param(self.config, widgets={"d": checked(pn.widgets.IntInput), "steps": checked(pn.widgets.IntInput),
                                               "count": checked(pn.widgets.IntInput)}, sizing_mode="stretch_width")]

    def __panel__(self):
        return pn.FlexBox(pn.Column(self.run_button, self.table, **COLUMN),
                          pn.Column(self.magnetization.figure, **COLUMN),
                          pn.Column(self.sweep_button, self.sweep_note, self.sweep.figure, **COLUMN))
