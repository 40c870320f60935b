"""The Emulator Studio dashboard: one browser session's tabs (Data, Interpolant, Sample, Compare, Train, Rollout,
Super-resolution, Jobs), each its own ``pn.viewable.Viewer``, in a template whose sidebar shows the controls of
the open tab.

A session is cheap: a view is built on its tab's first visit (the first screen builds only the Data view), and the
generation views' analytic setup only when one of them is opened. The open tab and the main settings live in the
URL's query, so a link reopens the same demo. Every control is rendered from an ``engine.config`` class; every
number comes from ``engine``. Plots are built once and updated in place.
"""
from __future__ import annotations

import os
from dataclasses import replace
from typing import NamedTuple

import panel as pn
import param
from panel.io.callbacks import PeriodicCallback
from panel.io.notifications import NotificationArea

from app.busy import PAGE_BUILDER, busy, in_background, modelled_for, page_loaded, release
from app.data_view import DataView
from app.export import save_view_button
from app.generation_views import (
    GENERATION_SAMPLER_PARAMETERS,
    GENERATION_SAMPLER_WIDGETS,
    SECTIONS,
    CompareView,
    Context,
    InterpolantView,
    SampleView,
)
from app.job_view import JobView
from app.jobs_view import JobsView
from app.new_data_view import NewDataView
from app.plots import shared_mapper
from app.rollout_view import RolloutView
from app.superres_view import SuperresView
from app.train_view import TrainView
from engine.checkpoints import list_runs
from engine.cluster import SCHEDULER_VARIABLE
from engine.config import ClusterConfig, NoiseConfig, SamplerConfig, ScheduleConfig
from engine.data.catalog import install_defaults
from engine.data.fields import load_fields, on_grid
from engine.data.store import DataStore
from engine.devices import DEVICE_CHOICES, resolve_device
from engine.errors import EngineError
from engine.generation import Setup, analytic_setup, checkpoint_setup
from engine.jobs import manager
from engine.schedules import spectral_ratio_at_highest_wavenumber
from engine.spectral import finest_held_shell, radial_spectrum, shell_sum

POLL_MS = 33  # how often a session drains job events: up to 30 frames per second, as fast as workers send previews
TABS = ("Data", "Interpolant", "Sample", "Compare", "Train", "Rollout", "Super-resolution", "Jobs")
GENERATION_TABS = ("Interpolant", "Sample", "Compare")
# numbers that may be empty (None = "derive it") need typed inputs, not sliders
OPTIONAL_NUMBERS = {"r": pn.widgets.FloatInput, "sigma_max": pn.widgets.FloatInput}
STRETCH = {"sizing_mode": "stretch_width"}
ANALYTIC = "analytic"  # the exact Gaussian drift, the generation views' default
# what the URL's query holds: parameter → query name, per object
URL_STATE = {"studio": {"tab": "tab", "section": "section", "dataset": "dataset", "lam": "lam"},
             "noise": {"kind": "noise", "exponent": "noise_exponent"},
             "schedule": {"kind": "schedule"},
             "sampler_a": {"method": "a_method", "steps": "a_steps", "grid": "a_grid"},
             "sampler_b": {"method": "b_method", "steps": "b_steps", "grid": "b_grid"}}


def dataset_choices(store: DataStore) -> dict[str, str]:
    """Datasets in the folder as {readable title: file name}: those holding fields (..., y, x) first, then 1-D
    series over time (..., time, site) such as Lorenz-96. Results written by jobs (rollouts, super-resolution,
    samples) are not datasets and are not listed; nor are entries that cannot be read."""
    fields, series = {}, {}
    for entry in store.datasets():
        dims = [tuple(sizes) for sizes in entry.get("variables", {}).values()]
        if any(on_grid(d) for d in dims):
            fields[entry["title"]] = entry["name"]
        elif any(len(d) >= 2 and d[-2] == "time" for d in dims):
            series[entry["title"]] = entry["name"]
    return fields | series


def smoothness_warning(setup: Setup) -> str:
    """Paper 000's condition: noise smoother than the data at the finest scale makes the drift stiff there."""
    r = spectral_ratio_at_highest_wavenumber(setup.data_power, setup.noise_power)
    k = finest_held_shell(shell_sum(setup.data_power))
    if r > 1.5:
        return (f"The noise is smoother than the data at the finest scale it holds (S_data/S_noise = {r:.3g} at "
                f"k = {k}): "
                "the drift is unbounded there, so samplers need many steps and the error grows with resolution.")
    return ""


class Opened(NamedTuple):
    """A tab's view and its sidebar controls, built (models included) on the page builder thread."""

    view: list
    controls: list


class Studio(pn.viewable.Viewer):
    """One browser session's dashboard over the chosen dataset."""

    dataset = param.Selector(default=None, objects=[], doc="a dataset in the data folder: fields, or 1-D series "
                                                           "(Lorenz-96) shown in the Data view and trainable as PDD")
    tab = param.Selector(default="Data", objects=list(TABS), doc="the open tab")
    section = param.Selector(default=SECTIONS[0], objects=list(SECTIONS), doc="the Interpolant tab's open section")
    lam = param.Number(default=0.1, bounds=(0.0, 1.0), step=0.005, label="Diffusion scale λ",
                       doc="the coarse-graining level λ of the forward process: the Data view's coarse field, the "
                           "Super-resolution input, and the λ a PDD predictor simulates at in Rollout")
    device = param.Selector(default="auto", objects=list(DEVICE_CHOICES), doc="where the views' jobs run at first "
                                                                               "(launch.py --device)")
    noise = param.ClassSelector(class_=NoiseConfig, doc="the source distribution of the generation views")
    schedule = param.ClassSelector(class_=ScheduleConfig, doc="the interpolation of the generation views")
    drift = param.Selector(default=ANALYTIC, objects=[ANALYTIC],
                           doc="the drift Sample and Compare integrate: the exact drift of a Gaussian with the data's "
                               "spectrum, or a trained generator's (train --task generate; same grid and noise)")
    sampler_a = param.ClassSelector(class_=SamplerConfig, doc="sampler A (Sample, and A in Compare)")
    sampler_b = param.ClassSelector(class_=SamplerConfig, doc="sampler B (Compare)")

    def __init__(self, store: DataStore | None = None, **params):
        super().__init__(noise=NoiseConfig(name="Noise"), schedule=ScheduleConfig(name="Schedule"),
                         sampler_a=SamplerConfig(name="Sampler A"),
                         sampler_b=SamplerConfig(name="Sampler B", method="sde", eps_shape="alpha2"), **params)
        self.store = store or DataStore()
        self.cluster = ClusterConfig(name="Cluster", scheduler=os.environ.get(SCHEDULER_VARIABLE))
        defaults = install_defaults(self.store)
        self.param.dataset.objects = dataset_choices(self.store)
        with param.parameterized.discard_events(self):  # nothing is drawn before the first view is built
            self.dataset = defaults[0]
        self.field_dataset = self.dataset  # the generation, Rollout and Super-resolution views need fields
        self.compute_device = resolve_device(self.device)
        self.data = self.data_name = self.context = None  # the field data and its analytic setup, on first need
        self.sampling: Setup | None = None  # the drift Sample and Compare integrate (``drift``), on first need
        self.views: dict[str, pn.viewable.Viewer] = {}
        self.layouts: dict[str, pn.viewable.Viewable] = {}  # each view's layout, made once (``__panel__``)
        self.opening: set[str] = set()  # tabs whose view is being built aside (on the page builder thread)
        self.pending: set[str] = set()  # generation views to redraw once no view is being built
        self.alert = pn.pane.Alert("", alert_type="warning", visible=False, **STRETCH)
        self.error = pn.pane.Alert("", alert_type="danger", visible=False, **STRETCH)
        self.dataset_info = pn.pane.Markdown("", name="dataset-info", **STRETCH)
        self.working = pn.indicators.LoadingSpinner(value=False, size=20, label="working", visible=False)
        self.mapper = shared_mapper(1.0)  # the generation views' fields share one colour range
        self.new_data_view = NewDataView(self.store, manager(), self._dataset_created,
                                         scheduler=lambda: self.cluster.scheduler)
        self.sidebar, self.sidebar_tab = pn.Column(**STRETCH), None
        self.sidebars: dict[tuple, list] = {}  # each built tab's controls (``_sidebar_key``), made once
        self.notifications = NotificationArea()  # Panel's bundled toasts: "a job ended" when its tab is not open
        self.panes = {name: pn.Column(pn.pane.Markdown(f"Opening {name}…"), min_height=300, **STRETCH)
                      for name in TABS}
        self.tabs = pn.Tabs(*self.panes.items(), dynamic=True, **STRETCH)  # only the open tab is in the page
        self.tabs.param.watch(lambda event: setattr(self, "tab", TABS[event.new]), "active")
        self.describe_dataset()

    # ----- the views, built on first visit --------------------------------------------------------------------
    def view(self, name: str) -> pn.viewable.Viewer:
        """The view of tab ``name``, built the first time it is asked for."""
        if name not in self.views:
            self.views[name] = self._build(name)
        return self.views[name]

    def _build(self, name: str) -> pn.viewable.Viewer:
        jobs = manager()
        if name == "Data":
            view = DataView(self.store, self.dataset)
            view.coarse.lam = self.lam
            return view
        if name in GENERATION_TABS:
            return self._build_generation(name)
        if name == "Train":
            view = TrainView(self.store, jobs, dataset=lambda: self.dataset,
                             generation_configs=lambda: (self.noise, self.schedule), device=self.device)
        elif name == "Rollout":
            view = RolloutView(self.store, jobs, lambda: self.field_dataset, device=self.device, lam=lambda: self.lam,
                               scheduler=lambda: self.cluster.scheduler)
        elif name == "Super-resolution":
            view = SuperresView(self.store, jobs, lambda: self.field_dataset)
            view.sampler.lam = self.lam
        else:
            return JobsView(jobs, self.store, self.cluster)
        view.on_finish = self._job_finished
        return view

    def _build_generation(self, name: str) -> pn.viewable.Viewer:
        """Interpolant, Sample or Compare (Compare draws against Sample's result, so it builds Sample too)."""
        if name == "Interpolant":
            view = InterpolantView(self.mapper, lambda: self.sampler_a.seed, self._safely)
            view.sections.active = self.section  # a link's section, built with the view
            view.sections.param.watch(lambda event: setattr(self, "section", event.new), "active")
            view.sections.param.watch(lambda _: self._show_controls(name, again=True), "shown")
        elif name == "Sample":
            self.refresh_drifts()
            view = SampleView(self.sampler_a, self.mapper)
        else:
            view = CompareView(self.view("Sample"), self.mapper, sampler=self.sampler_b)
        self._safely(lambda: self._show_generation(name, view))
        return view

    def _show_generation(self, name: str, view) -> None:
        """Draw a generation view: the Interpolant from the analytic setup, Sample (and Compare, from Sample's
        context) with the chosen ``drift``; each set up on first need."""
        if self.context is None:
            self._load_context()
        if name == "Interpolant":
            view.show(self.context)
        elif name == "Sample":
            if self.sampling is None:
                self.sampling = self._sampling_setup()
            view.show(replace(self.context, setup=self.sampling))
        else:
            view.show()

    def _sampling_setup(self) -> Setup:
        """The chosen drift on the current data, noise and schedule: the exact one, or a trained generator's (a
        generator trained on another grid or noise is refused with the reason)."""
        if self.drift == ANALYTIC:
            return self.context.setup
        return checkpoint_setup(str(self.store.path(self.drift)), self.data, self.noise, self.schedule,
                                self.compute_device, name=self.drift)

    def refresh_drifts(self) -> None:
        """The drifts to choose from: the exact one, and every generator trained in the data folder."""
        trained = {f"{row['run']} (trained on {row['data'] or 'its data'}, step {row['step']})": row["path"]
                   for row in list_runs(self.store.root) if row["task"] == "generate"}
        self.param.drift.objects = {"exact (Gaussian with the data's spectrum)": ANALYTIC, **trained}
        if self.drift not in self.param.drift.objects:
            self.drift = ANALYTIC

    # ----- reacting to the controls ---------------------------------------------------------------------------
    @param.depends("tab", watch=True)
    def _tab_changed(self) -> None:
        self.tabs.active = TABS.index(self.tab)
        if page_loaded():  # before that (a link's tab), ``_start`` opens it once the page has loaded
            self._open_tab()

    @param.depends("drift", watch=True)
    def _drift_changed(self) -> None:
        self.sampling = None
        self._redraw_generation(["Sample", "Compare"])

    @param.depends("section", watch=True)
    def _section_changed(self) -> None:
        if "Interpolant" in self.views:
            self.views["Interpolant"].sections.active = self.section

    @param.depends("noise.param", "schedule.param", watch=True)
    def _generation_changed(self) -> None:
        self.context = None
        self._redraw_generation(list(GENERATION_TABS))

    @param.depends("sampler_a.param", watch=True)
    def _sampler_changed(self) -> None:
        self._redraw_generation(["Sample", "Compare"])

    @param.depends("sampler_b.param", watch=True)
    def _sampler_b_changed(self) -> None:
        self._redraw_generation(["Compare"])

    @param.depends("dataset", watch=True)
    def _dataset_changed(self) -> None:
        self._safely(self._switch_dataset)

    @param.depends("lam", watch=True)
    def _lam_changed(self) -> None:
        if "Data" in self.views:
            self.views["Data"].coarse.lam = self.lam
        if "Super-resolution" in self.views:
            self.views["Super-resolution"].sampler.lam = self.lam

    def _redraw_generation(self, names: list[str]) -> None:
        """Redraw the built generation views among ``names`` under a loading overlay. While a view is being built
        aside (it may be loading the same context) the redraw waits in ``pending`` and runs when the build is in:
        the session's thread, which is the server's event loop, never waits for a build."""
        if self.opening:
            self.pending.update(names)
            self.working.visible = True
            return
        built = [name for name in names if name in self.views]
        if not built:
            return
        panes = [self.panes[name] for name in built] + [self.working]

        def redraw() -> None:
            for name in built:
                self._safely(lambda name=name: self._show_generation(name, self.views[name]))

        self.working.visible = True
        busy(panes, redraw)

    def _redraw_pending(self) -> None:
        """The redraws that waited for a build, once none is under way."""
        if self.pending and not self.opening:
            names, self.pending = sorted(self.pending), set()
            self._redraw_generation(names)

    def _open_tab(self) -> None:
        """Show the open tab's view (building it under a loading overlay on the first visit) and its controls in
        the sidebar."""
        name = self.tab
        pane = self.panes[name]
        for other, shown in self.panes.items():  # a view left in a hidden tab came back with stylesheets pointing
            if other != name and other in self.views and len(shown):  # at Panel's CDN (unreachable offline):
                shown[:] = []  # detached here, it is rendered afresh when its tab opens again
        if name in self.views and list(pane) != [self._layout(name)]:
            pane[:] = [self._layout(name)]
        if name not in self.views:
            if name in self.opening:
                return
            self.opening.add(name)
            pane.loading = True
            in_background(lambda: self._build_aside(name), lambda view: self._attach(name, view),
                          lambda reason: self._build_failed(name, reason), pool=PAGE_BUILDER)
        else:
            self._show_controls(name)

    def _build_aside(self, name: str) -> Opened:
        """Build a view, its sidebar and their Bokeh models on the page builder thread (one build at a time: it has
        one thread): the event loop stays free, so every other session's live stream keeps updating while this one
        opens."""
        view = self.view(name)
        controls = self.sidebars[self._sidebar_key(name)] = self.controls(name)
        self.layouts[name], = layout = modelled_for(self.panes[name], [view])
        return Opened(view=layout, controls=modelled_for(self.sidebar, controls))

    def _layout(self, name: str) -> pn.viewable.Viewable:
        """Tab ``name``'s view as laid out the first time: shown again, not made anew (a view's ``__panel__`` makes
        widgets linked to its parameters, which would stay linked)."""
        if name not in self.layouts:
            self.layouts[name] = pn.panel(self.views[name])
        return self.layouts[name]

    def _attach(self, name: str, opened: Opened) -> None:
        """On the session's thread: put a freshly built view's controls in the sidebar, then, a tick later (two
        shorter holds of the event loop), the view in its tab, if that tab is still open. The controls come first:
        one used the moment the view shows is not replaced under it."""
        if self.tab != name:
            self._attach_view(name, opened.view)
            release(self.sidebar, opened.controls)
            return
        self.sidebar[:], self.sidebar_tab = opened.controls, name
        document = pn.state.curdoc
        if document is None or document.session_context is None:
            self._attach_view(name, opened.view)
        else:
            document.add_next_tick_callback(lambda: self._attach_view(name, opened.view))

    def _attach_view(self, name: str, view: list) -> None:
        self.opening.discard(name)
        pane = self.panes[name]
        with pn.io.hold():
            pane.loading = False
            if self.tab == name:
                pane[:] = view
            else:
                release(pane, view)
        self._redraw_pending()

    def _build_failed(self, name: str, reason: str) -> None:
        self.opening.discard(name)
        self.panes[name].loading = False
        self.error.object, self.error.visible = f"**{name} could not open:** {reason}", True
        self._redraw_pending()

    def _show_controls(self, name: str, again: bool = False) -> None:
        """Put tab ``name``'s controls in the sidebar, unless they are there already (replacing live widgets
        would drop a click that is on its way); ``again`` when the open tab's own section changed. The controls
        are made once per tab (and Interpolant section) and shown again: widgets made from parameters stay linked
        to them, so making new ones at every visit would leave every old one updating with each change."""
        if again and self.tab != name:
            return
        key = self._sidebar_key(name)
        if key not in self.sidebars:
            self.sidebars[key] = self.controls(name)
        if self.sidebar_tab != name or again:
            self.sidebar[:], self.sidebar_tab = self.sidebars[key], name

    def _sidebar_key(self, name: str) -> tuple:
        """Which sidebar tab ``name`` shows: the Interpolant's depends on whether its open section uses the
        dataset, noise and schedule."""
        return name, getattr(self.views.get(name), "uses_generation_settings", None)

    def controls(self, name: str) -> list:
        """The sidebar for tab ``name``: only the controls that act on it (each widget made only where shown, since
        a widget made from a parameter stays linked to it)."""
        view = self.views.get(name)
        if view is None:
            return self._dataset_controls()
        if name == "Data":
            return [*self._dataset_controls(), self._lam_control(), *view.controls(), self.new_data_view]
        if name == "Interpolant":
            return [*self._dataset_controls(), *self._generation_controls()] if view.uses_generation_settings \
                else view.controls()
        if name == "Sample":
            return [*self._dataset_controls(), *self._generation_controls(), self._drift_control(),
                    pn.Param(self.sampler_a, name="Sampler A", parameters=GENERATION_SAMPLER_PARAMETERS,
                             widgets=GENERATION_SAMPLER_WIDGETS, **STRETCH)]
        if name == "Compare":
            return [*self._dataset_controls(), *self._generation_controls(), self._drift_control()]
        if name == "Train":
            return [*self._dataset_controls(), *view.controls(),
                    pn.pane.Markdown("**Generative tasks** use this noise and schedule:"), *self._generation_controls()]
        if name == "Rollout":
            return [*view.controls(), self._lam_control(),
                    pn.pane.Markdown("λ applies to PDD predictors; other emulators run at λ = 0.")]
        if name == "Super-resolution":
            return [self._lam_control(), *view.controls()]
        return [pn.pane.Markdown("Jobs run in the server: they go on when a page is closed or reloaded, and any "
                                 "page can cancel them."), *view.controls()]

    def _dataset_controls(self) -> list:
        return [pn.widgets.Select.from_param(self.param.dataset, label="Dataset", **STRETCH), self.dataset_info]

    def _lam_control(self) -> pn.widgets.FloatSlider:
        return pn.widgets.FloatSlider.from_param(self.param.lam, format="0.000", **STRETCH)

    def _generation_controls(self) -> list:
        return [pn.Param(self.noise, widgets={"kind": pn.widgets.RadioButtonGroup}, name="Noise spectrum", **STRETCH),
                pn.Param(self.schedule, name="Interpolation schedule", widgets=OPTIONAL_NUMBERS, **STRETCH)]

    def _drift_control(self) -> pn.widgets.Select:
        return pn.widgets.Select.from_param(self.param.drift, label="Drift", **STRETCH)

    def __panel__(self):
        if pn.state.location is not None:
            for owner, names in URL_STATE.items():
                pn.state.location.sync(self if owner == "studio" else getattr(self, owner), names)
        pn.state.onload(self._start)  # the page arrives at once; the open tab's view is built once it has loaded
        # no template busy indicator: it follows the whole server (any page's callbacks), and every page's copy is
        # updated on the event loop at every message of every page; ``working`` and the overlays say it per page
        return pn.template.BootstrapTemplate(
            title="Emulator Studio", sidebar=[self.working, self.sidebar], sidebar_width=340, busy_indicator=None,
            main=[self.alert, self.error, self.tabs], header=[pn.Row(save_view_button(self.tabs), align="end")],
            notifications=self.notifications)

    def _start(self) -> None:
        """The page has loaded: show the open tab (building its view) and follow this server's jobs."""
        self._open_tab()
        # in the background: a poll 30 times a second must not keep the page's busy indicator spinning
        PeriodicCallback(callback=self._poll_jobs, period=POLL_MS, log=False, background=True).start()

    # ----- updates ------------------------------------------------------------------------------------
    def _poll_jobs(self) -> None:
        """Drain the jobs' events into the built views; an error is shown, and the callback keeps running."""
        try:
            shown = [view for name, view in list(self.views.items()) if name not in self.opening]
            for view in [*shown, self.new_data_view]:  # a view still being built aside is left to its builder
                if isinstance(view, JobView):
                    view.poll()
                elif isinstance(view, JobsView):
                    view.refresh()
            if self.working.visible and not any(pane.loading for pane in self.panes.values()):
                self.working.visible = False
        except Exception as err:  # a periodic callback that raises stops silently: report and go on
            self.error.object, self.error.visible = f"**Live update failed:** {type(err).__name__}: {err}", True

    def _job_finished(self, view: JobView, message: str) -> None:
        """A followed job ended: notify when its tab is not the one open; a finished training may add a drift."""
        if view is self.views.get("Train") and "Sample" in self.views:
            self.refresh_drifts()
        if view is not self.views.get(self.tab):
            self.notifications.info(f"{message} (see its tab)", duration=6000)

    def _safely(self, update) -> None:
        """Run an update; a bad combination shows its reason in place instead of breaking the page."""
        try:
            update()
            self.error.visible = False
        except (EngineError, ValueError) as err:
            self.error.object = f"**Could not compute:** {err}"
            self.error.visible = True

    def _load_context(self) -> None:
        """The field dataset, its spectrum (matched noise and the analytic drift come from it), colour scales and
        the analytic setup of the generation views."""
        if self.data_name != self.field_dataset:
            self.data, self.data_name = load_fields(self.store.path(self.field_dataset)), self.field_dataset
            self.data_spectrum = radial_spectrum(self.data.fields)
            limit = 3 * float(self.data.fields.std())
            self.mapper.update(low=-limit, high=limit)
        setup = analytic_setup(self.data, self.noise, self.schedule)
        warning = smoothness_warning(setup)
        self.alert.object, self.alert.visible = warning, bool(warning)
        self.context = Context(self.data, setup, self.data_spectrum, self.noise, self.compute_device)
        self.sampling = None  # set up again on this context

    def describe_dataset(self) -> None:
        """The sidebar's line under the dataset control (from the folder's cached description: no file read)."""
        info = self.store.describe(self.dataset)
        if info["name"] != self.field_dataset:
            self.dataset_info.object = (f"1-D series: shown in the Data view, trainable as `pdd` in Train. The other "
                                        f"views keep `{self.field_dataset}`.")
            return
        spacing = info.get("dt")
        self.dataset_info.object = (f"`{info.get('generator', 'imported')}` · `{info['name']}`"
                                    + (f" · saved every Δt = {spacing:g}" if spacing else ""))

    def _dataset_created(self, name: str) -> None:
        """A generated or imported dataset arrived: list it and show it."""
        self.param.dataset.objects = dataset_choices(self.store)
        self.dataset = name

    def _switch_dataset(self) -> None:
        series = self._is_series(self.dataset)
        if not series:
            self.field_dataset = self.dataset
        self.describe_dataset()
        if "Data" in self.views:
            self.views["Data"].open(self.dataset)
        if series:
            return
        self.context = None
        if "Super-resolution" in self.views:
            superres = self.views["Super-resolution"]
            superres.guarded(superres.follow_sidebar)
        self._redraw_generation(list(GENERATION_TABS))

    def _is_series(self, name: str) -> bool:
        """Whether a dataset holds 1-D series rather than fields."""
        variables = self.store.describe(name).get("variables", {})
        return not any(on_grid(sizes) for sizes in variables.values())
