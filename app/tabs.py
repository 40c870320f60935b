"""The dashboard's tabs as a registry: each ``Tab`` says how its view is made, what its sidebar holds, how it is drawn
from the session's generation settings and which settings it follows. The ``Studio`` routes between them and
branches on no tab's name. Every function here takes the session's ``Studio`` (its settings and shared state).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import panel as pn

from app.data_view import DataView
from app.generation_views import (
    GENERATION_SAMPLER_PARAMETERS,
    GENERATION_SAMPLER_WIDGETS,
    CompareView,
    InterpolantView,
    SampleView,
)
from app.input_check import checked
from app.jobs_view import JobsView
from app.rollout_view import RolloutView
from app.superres_view import SuperresView
from app.train_view import TrainView
from engine.jobs import manager

STRETCH = {"sizing_mode": "stretch_width"}
OPTIONAL_NUMBERS = dict.fromkeys(("r", "sigma_max"), checked(pn.widgets.FloatInput))  # None = "derive it"
# what a generation tab redraws on: the noise or schedule, the field dataset, the drift, either sampler
GENERATION, FIELD_DATASET, DRIFT = "generation", "field_dataset", "drift"
SAMPLER_A, SAMPLER_B = "sampler_a", "sampler_b"


@dataclass(frozen=True)
class Tab:
    """One tab: ``build`` makes its view, ``sidebar`` its controls, ``draw`` (generation tabs) draws it from the
    session's setups whenever one of ``redraw_on`` changes, and ``follows`` maps a setting (``lam``, ``dataset``,
    ``field_dataset``, ``section``) to how the view takes it in place."""

    name: str
    build: Callable
    sidebar: Callable
    draw: Callable | None = None
    redraw_on: frozenset = frozenset()
    follows: dict = field(default_factory=dict)


# ----- the sidebar's shared controls ----------------------------------------------------------------------------
def dataset_controls(studio) -> list:
    return [pn.widgets.Select.from_param(studio.param.dataset, label="Dataset", **STRETCH), studio.dataset_info]


def field_dataset_controls(studio) -> list:
    """The dataset, and the field of it the generation tabs draw (shown for a dataset of several fields)."""
    return [*dataset_controls(studio), studio.generation.field_control]


def lam_control(studio) -> pn.widgets.FloatSlider:
    return pn.widgets.FloatSlider.from_param(studio.param.lam, format="0.000", **STRETCH)


def generation_controls(studio) -> list:
    return [pn.Param(studio.noise, widgets={"kind": pn.widgets.RadioButtonGroup}, name="Noise spectrum", **STRETCH),
            pn.Param(studio.schedule, name="Interpolation schedule", widgets=OPTIONAL_NUMBERS, **STRETCH)]


def drift_control(studio) -> pn.widgets.Select:
    return pn.widgets.Select.from_param(studio.param.drift, label="Drift", **STRETCH)


# ----- each tab -------------------------------------------------------------------------------------------------
def _data(studio) -> DataView:
    view = DataView(studio.store, studio.dataset)
    view.coarse.lam = studio.lam
    return sharing_field(studio, view, "variable")


def _interpolant(studio) -> InterpolantView:
    view = InterpolantView(studio.mapper, lambda: studio.sampler_a.seed, studio.safely)
    view.sections.active = studio.section  # a link's section, built with the view
    view.sections.param.watch(lambda event: setattr(studio, "section", event.new), "active")
    view.sections.param.watch(lambda _: studio.show_controls("Interpolant", again=True), "shown")
    return view


def _sample(studio) -> SampleView:
    studio.refresh_drifts()
    return SampleView(studio.sampler_a, studio.mapper)


def _context(studio):
    return studio.generation.ensure_context(studio.field_dataset, studio.field, studio.noise, studio.schedule)


def _draw_sample(studio, view: SampleView) -> None:
    _context(studio)
    view.show(studio.generation.sampling_context(studio.drift, studio.noise, studio.schedule))


def _train(studio) -> TrainView:
    return TrainView(studio.store, manager(), dataset=lambda: studio.dataset,
                     generation_configs=lambda: (studio.noise, studio.schedule), device=studio.device)


def _rollout(studio) -> RolloutView:
    view = RolloutView(studio.store, manager(), lambda: studio.field_dataset, device=studio.device,
                       lam=lambda: studio.lam, scheduler=lambda: studio.cluster.scheduler)
    return sharing_field(studio, view, "field")


def _superres(studio) -> SuperresView:
    view = SuperresView(studio.store, manager(), lambda: studio.field_dataset)
    view.sampler.lam = studio.lam
    return sharing_field(studio, view, "field")


def sharing_field(studio, view, name: str):
    """The view's field control ``name`` and the session's ``field`` (the URL's) kept as one: the view starts at the
    session's field where it has one and prefers it whenever its choices change (another dataset or emulator), and
    a field picked in it becomes the session's."""
    view.preferred_field = lambda: studio.field
    _set_field(name)(studio, view)
    view.param.watch(lambda event: setattr(studio, "field", event.new or ""), name)
    return view


def _set_field(name: str) -> Callable:
    """How a view takes the session's field: into its control ``name``, when the view has that field."""
    def take(studio, view) -> None:
        if studio.field and studio.field in view.param[name].objects and getattr(view, name) != studio.field:
            setattr(view, name, studio.field)
    return take


def _set_lam(target: str) -> Callable:
    """How a view takes the sidebar's λ: into its ``target`` config (``coarse`` or ``sampler``)."""
    return lambda studio, view: setattr(getattr(view, target), "lam", studio.lam)


def drawing(setting: str) -> list[str]:
    """The tabs that redraw when ``setting`` changes, in the page's order (Compare after Sample, whose result it
    draws against)."""
    return [name for name, tab in TABS.items() if setting in tab.redraw_on]


JOBS_NOTE = "Jobs run in the server: they go on when a page is closed or reloaded, and any page can cancel them."
GENERATING = frozenset({GENERATION, FIELD_DATASET})

TABS = {tab.name: tab for tab in (
    Tab("Data", _data, lambda s, view: [*dataset_controls(s), lam_control(s), *view.controls(), s.new_data_view],
        follows={"lam": _set_lam("coarse"), "dataset": lambda s, view: view.open(s.dataset),
                 "field": _set_field("variable")}),
    Tab("Interpolant", _interpolant,
        lambda s, view: [*field_dataset_controls(s), *generation_controls(s)] if view.uses_generation_settings
        else view.controls(),
        draw=lambda s, view: view.show(_context(s)), redraw_on=GENERATING,
        follows={"section": lambda s, view: setattr(view.sections, "active", s.section)}),
    Tab("Sample", _sample,  # the sampler first: its Steps is what one changes most here (above the fold at 1000 px)
        lambda s, view: [*field_dataset_controls(s),
                         pn.Param(s.sampler_a, name="Sampler A", parameters=GENERATION_SAMPLER_PARAMETERS,
                                  widgets=GENERATION_SAMPLER_WIDGETS, **STRETCH),
                         drift_control(s), *generation_controls(s)],
        draw=_draw_sample, redraw_on=GENERATING | {DRIFT, SAMPLER_A}),
    Tab("Compare", lambda s: CompareView(s.view("Sample"), s.mapper, sampler=s.sampler_b),
        lambda s, view: [*field_dataset_controls(s), *generation_controls(s), drift_control(s)],
        draw=lambda s, view: view.show(), redraw_on=GENERATING | {DRIFT, SAMPLER_A, SAMPLER_B}),
    Tab("Train", _train, lambda s, view: [*dataset_controls(s), *view.controls(),
                                          pn.pane.Markdown("**Generative tasks** use this noise and schedule:"),
                                          *generation_controls(s)]),
    Tab("Rollout", _rollout, lambda s, view: [*view.controls(), lam_control(s),
                                              pn.pane.Markdown("λ applies to PDD predictors; other emulators run at "
                                                               "λ = 0.")],
        follows={"field_dataset": lambda s, view: view.follow_sidebar(), "field": _set_field("field")}),
    Tab("Super-resolution", _superres, lambda s, view: [lam_control(s), *view.controls()],
        follows={"lam": _set_lam("sampler"), "field": _set_field("field"),
                 "field_dataset": lambda s, view: view.guarded(view.follow_sidebar)}),
    Tab("Jobs", lambda s: JobsView(manager(), s.store, s.cluster),
        lambda s, view: [pn.pane.Markdown(JOBS_NOTE), *view.controls()]),
)}
