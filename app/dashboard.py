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

import panel as pn
import param
from panel.io.callbacks import PeriodicCallback
from panel.io.notifications import NotificationArea

from app.busy import busy, page_loaded
from app.export import save_view_button
from app.generation_state import ANALYTIC, GenerationState, drift_choices, field_choices
from app.generation_views import SECTIONS
from app.input_check import explain, handle_callback_error, watch_session
from app.job_view import JobView
from app.jobs_view import JobsView
from app.lessons import WELCOME_COOKIE, LessonsPanel
from app.new_data_view import NewDataView
from app.panel_internals import quiet_callback_log
from app.plots import shared_mapper
from app.tab_host import TabHost
from app.tabs import DRIFT, FIELD_DATASET, GENERATION, STRETCH, TABS, drawing
from engine.cluster import SCHEDULER_VARIABLE
from engine.config import ClusterConfig, NoiseConfig, SamplerConfig, ScheduleConfig
from engine.data.catalog import install_defaults
from engine.data.fields import on_grid
from engine.data.store import GENERATOR_TITLES, DataStore
from engine.devices import DEVICE_CHOICES, resolve_device
from engine.errors import EngineError
from engine.jobs import manager

POLL_MS = 33  # how often a session drains job events: up to 30 frames per second, as fast as workers send previews
pn.config.exception_handler = handle_callback_error  # refused inputs are told to their page, not put back silently
quiet_callback_log(explain)  # and are not server errors
TABS_ORDER = list(TABS)  # the tabs as the page lays them out
CONFIGS = ("noise", "schedule", "sampler_a", "sampler_b")  # the settings that are configs of their own
# what the URL's query holds: parameter → query name, per object
URL_STATE = {"studio": {"tab": "tab", "section": "section", "dataset": "dataset", "lam": "lam", "field": "field"},
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


def dataset_line(store: DataStore, dataset: str, field_dataset: str) -> str:
    """The sidebar's line under the dataset control (from the folder's cached description: no file read)."""
    info = store.describe(dataset)
    if info["name"] != field_dataset:
        return (f"1-D series: shown in the Data view, trainable as `pdd` in Train. The other views keep "
                f"`{field_dataset}`.")
    made = GENERATOR_TITLES.get(info.get("generator"))
    fields = field_choices(store, dataset)
    spacing = info.get("dt")
    return (f"`{info['name']}` · {f'generated here ({made})' if made else 'imported'}"
            + (f" · fields {', '.join(fields)}" if len(fields) > 1 else "")
            + (f" · saved every Δt = {spacing:g}" if spacing else ""))


class Studio(pn.viewable.Viewer):
    """One browser session's dashboard over the chosen dataset: its settings (in the URL), and the routing of each
    change to the tabs that use it (``app.tabs``); ``TabHost`` shows the tabs, ``GenerationState`` holds what
    the generation tabs share."""

    dataset = param.Selector(default=None, objects=[], doc="a dataset in the data folder: fields, or 1-D series "
                                                           "(Lorenz-96) shown in the Data view and trainable as PDD")
    tab = param.Selector(default="Data", objects=list(TABS), doc="the open tab")
    field = param.String(default="", doc="the field drawn of a state of several (every view that draws fields), by "
                                         "its variable's name; empty: each view's first")
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
        self.pending: set[str] = set()  # tabs to redraw once no view is being built
        self.alert = pn.pane.Alert("", alert_type="warning", visible=False, **STRETCH)
        self.error = pn.pane.Alert("", alert_type="danger", visible=False, **STRETCH)
        self.dataset_info = pn.pane.Markdown("", name="dataset-info", **STRETCH)
        self.working = pn.indicators.LoadingSpinner(value=False, size=20, label="working", visible=False)
        self.mapper = shared_mapper(1.0)  # the generation views' fields share one colour range
        self.generation = GenerationState(self.store, self.mapper, self.alert, resolve_device(self.device),
                                          choose_field=lambda name: setattr(self, "field", name))
        self.new_data_view = NewDataView(self.store, manager(), self._dataset_created,
                                         scheduler=lambda: self.cluster.scheduler)
        self.notifications = NotificationArea()  # Panel's bundled toasts: "a job ended" when its tab is not open
        self.host = TabHost(self)
        self.host.tabs.param.watch(lambda event: setattr(self, "tab", TABS_ORDER[event.new]), "active")
        self.param.watch(self._changed, ["tab", "drift", "section", "dataset", "lam", "field"])
        for owner in (self.noise, self.schedule, self.sampler_a, self.sampler_b):
            owner.param.watch(self._changed, [name for name in owner.param if name != "name"])
        self.dataset_info.object = dataset_line(self.store, self.dataset, self.field_dataset)

    def view(self, name: str) -> pn.viewable.Viewer:
        return self.host.view(name)

    def show_controls(self, name: str, again: bool = False) -> None:
        self.host.show_controls(name, again)

    # ----- routing each change to the tabs that use it ------------------------------------------------------------
    def _changed(self, *events) -> None:
        """Settings changed (several at once when a link's query sets them together): open a tab, forget what
        depends on them, and redraw or update the tabs that use them."""
        for event in events:
            owner = next((name for name in CONFIGS if event.obj is getattr(self, name)), None)
            if owner in ("noise", "schedule"):
                self.generation.forget()
                self.redraw(drawing(GENERATION))
            elif owner is not None:
                self.redraw(drawing(owner))
            elif event.name == "tab":
                self.host.tabs.active = TABS_ORDER.index(self.tab)
                if page_loaded():  # before that (a link's tab), ``_start`` opens it once the page has loaded
                    self.host.open(self.tab)
            elif event.name == "drift":
                self.generation.sampling = None
                self.redraw(drawing(DRIFT))
            elif event.name == "dataset":
                self.safely(self._switch_dataset)
            else:
                self._follow(event.name)
                if event.name == "field" and self.generation.field_changed(self.field_dataset, self.field):
                    self.redraw(drawing(FIELD_DATASET))

    def _follow(self, setting: str) -> None:
        """Let every built view that follows ``setting`` (``lam``, ``section``, ``dataset``, ``field_dataset``,
        ``field``) take it."""
        for name, tab in TABS.items():
            if setting in tab.follows and name in self.host.views:
                tab.follows[setting](self, self.host.views[name])

    def redraw(self, names: list[str]) -> None:
        """Redraw the built tabs among ``names`` under a loading overlay. While a view is being built aside (it may
        be loading the same context) the redraw waits in ``pending`` and runs once the build is in: the session's
        thread, which is the server's event loop, never waits for a build."""
        if self.host.opening:
            self.pending.update(names)
            self.working.visible = True
            return
        built = [name for name in names if name in self.host.views]
        if not built:
            return

        def draw() -> None:
            for name in built:
                self.safely(lambda name=name: TABS[name].draw(self, self.host.views[name]))

        self.working.visible = True
        busy([self.host.panes[name] for name in built] + [self.working], draw)

    def redraw_pending(self) -> None:
        """The redraws that waited for a build, once none is under way (in the tabs' order: Compare after
        Sample)."""
        if self.pending and not self.host.opening:
            waiting, self.pending = self.pending, set()
            self.redraw([name for name in TABS if name in waiting])

    # ----- the page -------------------------------------------------------------------------------------------
    def __panel__(self):
        watch_session(self.notifications)  # an input a config refuses is told in this page's notifications
        if pn.state.location is not None:
            for owner, names in URL_STATE.items():
                pn.state.location.sync(self if owner == "studio" else getattr(self, owner), names)
        pn.state.onload(self._start)  # the page arrives at once; the open tab's view is built once it has loaded
        lessons = LessonsPanel(self, welcomed=bool(pn.state.cookies.get(WELCOME_COOKIE)))
        # no template busy indicator: it follows the whole server (any page's callbacks), and every page's copy is
        # updated on the event loop at every message of every page; ``working`` and the overlays say it per page
        return pn.template.BootstrapTemplate(
            title="Emulator Studio", sidebar=[self.working, self.host.sidebar], sidebar_width=340,
            busy_indicator=None, main=[lessons, self.alert, self.error, self.host.tabs],
            header=[pn.Row(save_view_button(self.host.tabs), align="end")], notifications=self.notifications)

    def _start(self) -> None:
        """The page has loaded: show the open tab (building its view) and follow this server's jobs."""
        self.host.open(self.tab)
        # in the background: a poll 30 times a second must not keep the page's busy indicator spinning
        PeriodicCallback(callback=self._poll_jobs, period=POLL_MS, log=False, background=True).start()

    def _poll_jobs(self) -> None:
        """Drain the jobs' events into the built views; an error is shown, and the callback keeps running."""
        try:
            shown = [view for name, view in list(self.host.views.items()) if name not in self.host.opening]
            for view in [*shown, self.new_data_view]:  # a view still being built aside is left to its builder
                if isinstance(view, JobView):
                    view.poll()
                elif isinstance(view, JobsView):
                    view.refresh()
            if self.working.visible and not any(pane.loading for pane in self.host.panes.values()):
                self.working.visible = False
        except Exception as err:  # a periodic callback that raises stops silently: report and go on
            self.error.object, self.error.visible = f"**Live update failed:** {type(err).__name__}: {err}", True

    def job_finished(self, view: JobView, message: str) -> None:
        """A followed job ended: notify when its tab is not the one open; a finished training may add a drift."""
        self.refresh_drifts()
        if view is not self.host.views.get(self.tab):
            self.notifications.info(f"{message} (see its tab)", duration=6000)

    def safely(self, update) -> None:
        """Run an update; a bad combination shows its reason in place instead of breaking the page."""
        try:
            update()
            self.error.visible = False
        except (EngineError, ValueError) as err:
            self.error.object = f"**Could not compute:** {err}"
            self.error.visible = True

    def refresh_drifts(self) -> None:
        """The drifts to choose from: the exact one, and every generator trained in the data folder."""
        self.param.drift.objects = drift_choices(self.store)
        if self.drift not in self.param.drift.objects:
            self.drift = ANALYTIC

    # ----- the dataset ----------------------------------------------------------------------------------------
    def _dataset_created(self, name: str) -> None:
        """A generated or imported dataset arrived: list it and show it."""
        self.param.dataset.objects = dataset_choices(self.store)
        self.dataset = name

    def _switch_dataset(self) -> None:
        """The Data view follows any dataset; the field tabs only one of fields (a 1-D series leaves them as
        they are)."""
        variables = self.store.describe(self.dataset).get("variables", {})
        series = not any(on_grid(sizes) for sizes in variables.values())
        if not series:
            self.field_dataset = self.dataset
        self.dataset_info.object = dataset_line(self.store, self.dataset, self.field_dataset)
        self._follow("dataset")
        if not series:
            self.generation.forget()
            self._follow("field_dataset")
            self.redraw(drawing(FIELD_DATASET))
