"""The Super-resolution / λ view (paper 002, Figure 4): a sequence of the dataset coarse-grained at λ, the field a
PDD predictor recovers by reverse-λ integration (drawn live as λ falls to 0), the fine truth, and the three spectra.

The data must be what the predictor models: fields on its grid saved every Δt it was trained on; the view lists
those, the sidebar's dataset first when it is one of them. Moving λ or the seed redraws the coarse input at once
(``engine.pipelines.superres.superres_inputs``: the same draw the job starts from); λ = 1 with "from noise" is
generation.
"""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Callable

import numpy as np
import panel as pn
import param

from app.input_check import checked
from app.job_view import JobView
from app.plots import CurvePlot, FieldPlot, shared_mapper
from engine.checkpoints import list_runs
from engine.coarse import surviving_wavenumber
from engine.config import PDDSamplerConfig
from engine.data.sequences import dataset_fits, datasets_for, load_sequences
from engine.data.store import DataStore
from engine.diagnostics import spectra
from engine.errors import EngineError
from engine.jobs import JobManager
from engine.pdd import load_pdd
from engine.pipelines.superres import SuperresRequest, middle_frame, superres_inputs, superres_variables

REVERSE_WIDGETS = {"steps": checked(pn.widgets.IntInput), "seed": checked(pn.widgets.IntInput)}
LINES = ["coarse input", "super-resolved", "truth"]


def pdd_checkpoints(store: DataStore) -> list[str]:
    """PDD runs in the data folder, the shipped one first."""
    found = [row["path"] for row in list_runs(store.root) if row["task"] == "pdd"]
    return sorted(found, key=lambda path: "shipped" not in path)


class SuperresView(JobView):
    """One super-resolution job per browser session, over the first sequence of the chosen dataset."""

    label, start_label, button_width, request_type = "Super-resolution", "Super-resolve", 130, SuperresRequest
    status_name, idle_text = "superres-status", "Pick λ and press Super-resolve."
    checkpoint = param.Selector(default=None, objects=[], doc="a PDD predictor (train --task pdd)")
    dataset = param.Selector(default=None, objects=[], doc="fields on the predictor's grid, saved every Δt it was "
                                                           "trained on")
    from_noise = param.Boolean(default=False, doc="generation: start from the Gaussian with the λ-marginal's "
                                                  "per-mode variance e^(2μλ)P_k + Q_k(λ) instead of the coarse data")
    sampler = param.ClassSelector(class_=PDDSamplerConfig, doc="the reverse-λ integration")
    field = param.Selector(default=None, objects=[], label="Field",
                           doc="the field drawn of a predictor of several (each with its own colour range)")

    def __init__(self, store: DataStore, jobs: JobManager, sidebar_dataset: Callable[[], str], **params):
        # 40 geometric steps of the reverse SDE: the shipped predictor's best high-band error (benchmarks/pdd.py)
        super().__init__(jobs, sampler=PDDSamplerConfig(name="Reverse λ", steps=40), **params)
        self.store, self.sidebar_dataset = store, sidebar_dataset
        self.mapper = shared_mapper(1.0)
        self.coarse_plot = FieldPlot("coarse input at λ", self.mapper, 280)
        self.output_plot = FieldPlot("super-resolved", self.mapper, 280,
                                     empty="the field as λ falls to 0, live")
        self.truth_plot = FieldPlot("fine truth", self.mapper, 280)
        self.spectrum = CurvePlot("power spectra (mean over the sequence)", LINES, "wavenumber k", "S(k)", height=300)
        self.shown_out = None  # the file of the result shown: what the download serves
        self.download = pn.widgets.FileDownload(callback=lambda: str(self.store.path(self.shown_out)),
                                                filename="superres.nc", disabled=True,
                                                label="Download result (netCDF)", width=240)
        self.model = self.data = None
        self.preferred_field: Callable[[], str] = lambda: ""  # the session's field (app.tabs.sharing_field)
        if not self.refresh_checkpoints():  # a new choice opens the model by itself
            self.guarded(self.open_model)

    def refresh_checkpoints(self) -> bool:
        """List the PDD checkpoints; returns whether the chosen one changed (which opens it)."""
        found = pdd_checkpoints(self.store)
        self.param.checkpoint.objects = found
        if self.checkpoint in found or not found:
            return False
        self.checkpoint = found[0]
        return True

    @param.depends("checkpoint", watch=True)
    def _checkpoint_changed(self) -> None:
        self.guarded(self.open_model)

    @param.depends("dataset", watch=True)
    def _dataset_changed(self) -> None:
        self.guarded(self.open_data)

    @param.depends("from_noise", "sampler.lam", "sampler.seed", watch=True)
    def _input_changed(self) -> None:
        self.guarded(self.draw_input)

    def open_model(self) -> None:
        """Load the chosen predictor, list the datasets it applies to and open one (the sidebar's if it fits)."""
        self.failure.visible = False
        if self.checkpoint is None:
            self.status.object = "No PDD predictor yet: train one in the Train view (task pdd)."
            return
        self.model, self.data = load_pdd(self.store.path(self.checkpoint)), None
        if self.model.ndim != 2:
            raise EngineError(f"{self.checkpoint} models 1-D series; this view super-resolves 2-D fields "
                              "(use python -m engine superres for 1-D data)")
        names = superres_variables(self.model)
        self.param.field.objects = names
        if self.field not in names:
            self.field = self.preferred_field() if self.preferred_field() in names else names[0]
        found = [name for name in datasets_for(self.store, self.model.n, self.model.dt)
                 if set(names) <= set(self.store.describe(name).get("variables", {}))]
        self.param.dataset.objects = found
        if not found:
            self.status.object = (f"No dataset in the folder holds {self.model.n}² fields saved every "
                                  f"Δt = {self.model.dt:g}, as this predictor was trained: make one in the New "
                                  f"dataset card (Kolmogorov, save interval {self.model.dt:g}).")
            return
        fitting = [name for name in (self.sidebar_dataset(), self.dataset) if name in found]
        chosen = (fitting or found)[0]
        if chosen == self.dataset:
            self.open_data()
        else:
            self.dataset = chosen  # opens it

    def follow_sidebar(self) -> None:
        """The sidebar's dataset changed: open it here too when it fits the predictor (listing it if it is new)."""
        name = self.sidebar_dataset()
        if self.model is None or name == self.dataset or not dataset_fits(self.store, name, self.model.n,
                                                                          self.model.dt):
            return
        if name not in self.param.dataset.objects:
            self.param.dataset.objects = sorted([*self.param.dataset.objects, name])
        self.dataset = name  # opens it

    def open_data(self) -> None:
        """The chosen dataset's first sequence: draw the truth and the coarse input."""
        if self.model is None or self.dataset is None:
            return
        self.data = load_sequences(self.store.path(self.dataset), superres_variables(self.model))
        self.draw_input()

    @param.depends("field", watch=True)
    def _field_changed(self) -> None:
        self.guarded(self.draw_input)

    def _of_field(self, values):
        """The chosen field of a state of several (its channel, the axis before the grid); one field as it is."""
        if not self.model.variables:
            return values
        return values[..., self.model.variables.index(self.field), :, :]

    def draw_input(self) -> None:
        """The coarse input the job will start from (same seed, same draw), its spectrum, and the truth."""
        if self.data is None:
            return
        inputs = superres_inputs(self.model, self.data, sequences=1, sampler=self.sampler, from_noise=self.from_noise)
        truth = self._of_field(self.model.denormalize(inputs.truth))
        coarse = self._of_field(self.model.denormalize(inputs.coarse))
        mean, std = float(truth.mean()), float(truth.std())  # the field's own colour range
        self.mapper.update(low=mean - 3 * std, high=mean + 3 * std)
        self.truth_plot.update(middle_frame(truth).numpy())
        self.coarse_plot.update(middle_frame(coarse).numpy())
        self._draw_spectrum("truth", truth[0])
        self._draw_spectrum("coarse input", coarse[0])
        survive = surviving_wavenumber(self.sampler.lam, self.model.n, self.model.process)
        start = (" The input is a draw from the Gaussian with the λ-marginal's variance e^(2μλ)P_k + Q_k(λ) per mode, "
                 f"not pure noise: {int((self.model.signal_to_noise(self.sampler.lam) > 1).sum())} modes still carry "
                 "more signal than noise there." if self.from_noise else "")
        self.status.object = (f"λ = {self.sampler.lam:g}: modes up to |k| ≈ {survive:g} keep half their amplitude; "
                              f"the predictor must restore the rest ({self.model.frames} frames, "
                              f"window {self.model.window}).{start}")

    def _draw_spectrum(self, name: str, fields) -> None:
        power = spectra(fields, 2).mean(0).numpy()
        self.spectrum.update(name, np.arange(1, power.shape[0]), power[1:])

    def request(self) -> SuperresRequest:
        return SuperresRequest(checkpoint=self.checkpoint, data=self.dataset, sampler=self.sampler, sequences=1,
                               from_noise=self.from_noise, out=f"superres/superres-{uuid.uuid4().hex[:8]}.nc")

    def prepare(self) -> None:
        self.refresh_checkpoints()
        if self.checkpoint is None:
            raise EngineError("no PDD predictor yet: train one in the Train view (task pdd)")
        if self.data is None:
            raise EngineError("no dataset in the folder fits this predictor's grid and Δt (see the line above)")
        self.download.disabled = True
        self.spectrum.update("super-resolved", [], [])

    def _show_progress(self, events: list[dict]) -> None:
        last = events[-1]
        self.output_plot.update(self._of_field(last["preview"]))
        self.status.object = (f"Super-resolution job {self.job.id}: λ = {last['lam']:.4f} "
                              f"(step {last['step']} / {last['steps']})")

    def _show_result(self, result: dict) -> None:
        self.output_plot.update(self._of_field(result["output_field"]))
        scores = result["per_variable"][self.field] if self.model.variables else result
        power = scores["spectra"]["output"]
        self.spectrum.update("super-resolved", np.arange(1, power.shape[0]), power[1:])
        self.download.disabled, self.download.filename = False, Path(result["out"]).name  # as stored
        self.shown_out = result["out"]
        errors = " · ".join(f"{band}: {scores['input_error'][band]:.2f} → {scores['output_error'][band]:.2f}"
                            for band in ("low", "mid", "high"))
        self.status.object = (f"Super-resolved λ = {result['lam']:g} → 0 in {result['steps']} steps, "
                              f"{result['seconds']:.1f} s. Mean |log S/S_truth| input → output, {errors}")

    def controls(self) -> list:
        """The sidebar's part for this view: predictor, data, start and the reverse integration (λ is the
        sidebar's)."""
        stretch = {"sizing_mode": "stretch_width"}
        return [pn.widgets.Select.from_param(self.param.checkpoint, label="PDD checkpoint", **stretch),
                pn.widgets.Select.from_param(self.param.dataset, label="Data (grid and Δt as trained)", **stretch),
                pn.widgets.Select.from_param(self.param.field, label="Field", **stretch),
                pn.widgets.Checkbox.from_param(self.param.from_noise, label="Generate from the λ-marginal Gaussian"),
                pn.Param(self.sampler, parameters=[p for p in self.sampler.param if p not in ("name", "lam")],
                         widgets=REVERSE_WIDGETS, **stretch)]

    def __panel__(self):
        return pn.Column(
            pn.FlexBox(self.start_button, self.stop_button, self.download), self.status, self.failure,
            self.job_settings,
            pn.FlexBox(self.coarse_plot.figure, self.output_plot.figure, self.truth_plot.figure, self.spectrum.figure),
            sizing_mode="stretch_width")
