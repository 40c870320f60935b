"""The Emulator Studio dashboard: one browser session's tabs (Data, Interpolant, Sample, Compare, Train, Rollout,
Super-resolution), each its own ``pn.viewable.Viewer``, under a sidebar of the dataset, noise, schedule and
sampler A.

Every control is rendered from an ``engine.config`` class; every number comes from ``engine``. Plots are
built once and updated in place.
"""
from __future__ import annotations

import panel as pn
import param

from app.data_view import DataView
from app.export import save_view_button
from app.generation_views import GENERATION_SAMPLER_WIDGETS, CompareView, Context, InterpolantView, SampleView
from app.new_data_view import NewDataView
from app.plots import shared_mapper
from app.rollout_view import RolloutView
from app.superres_view import SuperresView
from app.train_view import TrainView
from engine.config import NoiseConfig, SamplerConfig, ScheduleConfig
from engine.data.catalog import install_defaults
from engine.data.store import DataStore, load_fields
from engine.devices import DEVICE_CHOICES, resolve_device
from engine.errors import EngineError
from engine.generation import Setup, analytic_setup
from engine.jobs import manager
from engine.schedules import spectral_ratio_at_highest_wavenumber
from engine.spectral import finest_held_shell, radial_spectrum, shell_sum

POLL_MS = 33  # how often a session drains job events: up to 30 frames per second, as fast as workers send previews
# numbers that may be empty (None = "derive it") need typed inputs, not sliders
OPTIONAL_NUMBERS = {"r": pn.widgets.FloatInput, "sigma_max": pn.widgets.FloatInput}


def browsable_datasets(store: DataStore) -> list[str]:
    """Datasets in the folder, by name: those holding fields (..., y, x) first, then those holding only 1-D
    series over time (..., time, site), such as Lorenz-96."""
    fields, series = [], []
    for entry in store.list():
        dims = [tuple(sizes) for sizes in entry.get("variables", {}).values()]
        if any(d[-2:] == ("y", "x") for d in dims):
            fields.append(entry["name"])
        elif any(len(d) >= 2 and d[-2] == "time" for d in dims):
            series.append(entry["name"])
    return fields + series


def smoothness_warning(setup: Setup) -> str:
    """Paper 000's condition: noise smoother than the data at the finest scale makes the drift stiff there."""
    r = spectral_ratio_at_highest_wavenumber(setup.data_power, setup.noise_power)
    k = finest_held_shell(shell_sum(setup.data_power))
    if r > 1.5:
        return (f"The noise is smoother than the data at the finest scale it holds (S_data/S_noise = {r:.3g} at "
                f"k = {k}): "
                "the drift is unbounded there, so samplers need many steps and the error grows with resolution.")
    return ""


class Studio(pn.viewable.Viewer):
    """One browser session's dashboard over the chosen dataset."""

    dataset = param.Selector(default=None, objects=[], doc="a dataset in the data folder: fields, or 1-D series "
                                                           "(Lorenz-96) shown in the Data view and trainable as PDD")
    device = param.Selector(default="auto", objects=list(DEVICE_CHOICES), doc="where the views' jobs run at first "
                                                                               "(launch.py --device)")
    noise = param.ClassSelector(class_=NoiseConfig, doc="the source distribution of the generation views")
    schedule = param.ClassSelector(class_=ScheduleConfig, doc="the interpolation of the generation views")
    sampler_a = param.ClassSelector(class_=SamplerConfig, doc="the sidebar's sampler (Sample, and A in Compare)")

    def __init__(self, store: DataStore | None = None, **params):
        super().__init__(noise=NoiseConfig(name="Noise"), schedule=ScheduleConfig(name="Schedule"),
                         sampler_a=SamplerConfig(name="Sampler A"), **params)
        self.store = store or DataStore()
        defaults = install_defaults(self.store)
        self.param.dataset.objects = browsable_datasets(self.store)
        with param.parameterized.discard_events(self):  # the views are built below, before anything is drawn
            self.dataset = defaults[0]
        self.field_dataset = self.dataset  # the generation, Rollout and Super-resolution views need fields
        self.compute_device = resolve_device(self.device)
        self.alert = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width")
        self.error = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self.dataset_info = pn.pane.Markdown("", name="dataset-info")
        self.mapper, self.diff_mapper = shared_mapper(1.0), shared_mapper(1.0)
        self.data_view = DataView(self.store, self.dataset)
        self.interpolant_view = InterpolantView(self.mapper, lambda: self.sampler_a.seed, self._safely)
        self.sample_view = SampleView(self.sampler_a, self.mapper)
        self.compare_view = CompareView(self.sample_view, self.mapper, self.diff_mapper, self._safely)
        self.train_view = TrainView(self.store, manager(), dataset=lambda: self.dataset,
                                    generation_configs=lambda: (self.noise, self.schedule), device=self.device)
        self.rollout_view = RolloutView(self.store, manager(), lambda: self.field_dataset, device=self.device)
        self.superres_view = SuperresView(self.store, manager(), lambda: self.field_dataset)
        self.new_data_view = NewDataView(self.store, manager(), self._dataset_created)
        self._load_data()
        self.refresh()

    @param.depends("noise.param", "schedule.param", watch=True)
    def _generation_changed(self) -> None:
        self.refresh()

    @param.depends("sampler_a.param", watch=True)
    def _sampler_changed(self) -> None:
        self._safely(self._sample)

    @param.depends("dataset", watch=True)
    def _dataset_changed(self) -> None:
        self._safely(self._switch_dataset)

    def __panel__(self):
        sidebar = pn.Column(
            pn.widgets.Select.from_param(self.param.dataset, name="Dataset"), self.dataset_info, self.new_data_view,
            pn.Param(self.noise, widgets={"kind": pn.widgets.RadioButtonGroup}, name="Noise spectrum"),
            pn.Param(self.schedule, name="Interpolation schedule", widgets=OPTIONAL_NUMBERS),
            pn.Param(self.sampler_a, name="Sampler A", widgets=GENERATION_SAMPLER_WIDGETS),
            width=320)
        tabs = pn.Tabs(("Data", self.data_view), ("Interpolant", self.interpolant_view), ("Sample", self.sample_view),
                       ("Compare", self.compare_view), ("Train", self.train_view), ("Rollout", self.rollout_view),
                       ("Super-resolution", self.superres_view), dynamic=False)
        pn.state.onload(lambda: pn.state.add_periodic_callback(self._poll_jobs, period=POLL_MS))
        # a plain layout rather than a template: templates pull web fonts, and the studio must work offline
        header = pn.Row(pn.pane.HTML("<h2 style='margin:4px 0'>Emulator Studio</h2>", sizing_mode="stretch_width"),
                        save_view_button(tabs), sizing_mode="stretch_width",
                        styles={"background": "#1f4e79", "color": "white", "padding": "4px 12px"})
        return pn.Column(header, pn.Row(sidebar, pn.Column(self.alert, self.error, tabs)), sizing_mode="stretch_width")

    # ----- updates ------------------------------------------------------------------------------------
    def _poll_jobs(self) -> None:
        """Drain the followed jobs' events into the views; an error is shown, and the callback keeps running."""
        try:
            self.train_view.poll()
            self.rollout_view.poll()
            self.superres_view.poll()
            self.new_data_view.poll()
        except Exception as err:  # a periodic callback that raises stops silently: report and go on
            self.error.object, self.error.visible = f"**Live update failed:** {type(err).__name__}: {err}", True

    def _safely(self, update) -> None:
        """Run an update; a bad combination shows its reason in place instead of breaking the page."""
        try:
            update()
            self.error.visible = False
        except (EngineError, ValueError) as err:
            self.error.object = f"**Could not compute:** {err}"
            self.error.visible = True

    def _load_data(self) -> None:
        """The chosen dataset, its spectrum (matched noise and the analytic drift come from it), colour scales."""
        self.data = load_fields(self.store.path(self.field_dataset))
        self.data_spectrum = radial_spectrum(self.data.fields)
        limit = 3 * float(self.data.fields.std())
        self.mapper.update(low=-limit, high=limit)
        self.diff_mapper.update(low=-limit / 3, high=limit / 3)

    def _dataset_created(self, name: str) -> None:
        """A generated or imported dataset arrived: list it and show it."""
        self.param.dataset.objects = browsable_datasets(self.store)
        self.dataset = name

    def _switch_dataset(self) -> None:
        self.data_view.open(self.dataset)
        if self.data_view.series:
            self.dataset_info.object = (f"1-D series: shown in the Data view, trainable as `pdd` in Train. The other "
                                        f"views keep `{self.field_dataset}`.")
            return
        self.field_dataset = self.dataset
        self._load_data()
        self.superres_view.guarded(self.superres_view.follow_sidebar)
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the analytic setup from the dataset, noise and schedule, and redraw the generation views."""
        def everything():
            spacing = self.data.attrs.get("save_interval")
            self.dataset_info.object = (f"`{self.data.attrs.get('generator', 'imported')}` · "
                                        f"{self.data.fields.shape[0]} fields of `{self.data.variable}` · {self.data.n}²"
                                        + (f" · saved every Δt = {spacing:g}" if spacing else ""))
            setup = analytic_setup(self.data, self.noise, self.schedule)
            warning = smoothness_warning(setup)
            self.alert.object, self.alert.visible = warning, bool(warning)
            self.context = Context(self.data, setup, self.data_spectrum, self.noise, self.compute_device)
            self.interpolant_view.show(self.context)
            self._sample()

        self._safely(everything)

    def _sample(self) -> None:
        """Sampler A changed (or everything did): redraw Sample, then Compare against it."""
        self.sample_view.show(self.context)
        self.compare_view.show()
