"""What the generation tabs (Interpolant, Sample, Compare) share in one session: the field dataset's chosen field (the
session's Field), its spectrum and colour range, the analytic setup for the chosen noise and schedule, and the drift
Sample and Compare integrate (a generator of several fields samples its whole state; the views draw the chosen
field of it). Each is made on first need and dropped when what it depends on changes."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import panel as pn
from bokeh.models import LinearColorMapper

from app.generation_views import Context
from engine.checkpoints import list_runs, load_checkpoint
from engine.config import NoiseConfig, ScheduleConfig
from engine.data.fields import FieldData, load_fields, load_state_fields, on_grid
from engine.data.store import DataStore
from engine.errors import EngineError
from engine.generation import Setup, analytic_setup, checkpoint_setup
from engine.schedules import spectral_ratio_at_highest_wavenumber
from engine.spectral import finest_held_shell, radial_spectrum, shell_sum

ANALYTIC = "analytic"  # the exact Gaussian drift, the generation views' default


def smoothness_warning(setup: Setup) -> str:
    """Paper 000's condition: noise smoother than the data at the finest scale makes the drift stiff there."""
    r = spectral_ratio_at_highest_wavenumber(setup.data_power, setup.noise_power)
    k = finest_held_shell(shell_sum(setup.data_power))
    if r > 1.5:
        return (f"The noise is smoother than the data at the finest scale it holds (S_data/S_noise = {r:.3g} at "
                f"k = {k}): "
                "the drift is unbounded there, so samplers need many steps and the error grows with resolution.")
    return ""


def field_choices(store: DataStore, dataset: str) -> list[str]:
    """A dataset's field variables, dims (…, y, x), in file order (from the folder's cached description)."""
    variables = store.describe(dataset).get("variables", {})
    return [name for name, sizes in variables.items() if name != "spectrum" and on_grid(tuple(sizes))]


def drift_choices(store: DataStore) -> dict[str, str]:
    """The drifts to choose from: the exact one, and every generator trained in the data folder (one of several
    fields says which)."""
    def label(row: dict) -> str:
        fields = f", fields {', '.join(row['variables'])}" if len(row["variables"]) > 1 else ""
        return f"{row['run']} (trained on {row['data'] or 'its data'}{fields}, step {row['step']})"

    trained = {label(row): row["path"] for row in list_runs(store.root) if row["task"] == "generate"}
    return {"exact (Gaussian with the data's spectrum)": ANALYTIC, **trained}


class GenerationState:
    """The field data, the analytic ``context`` and the ``sampling`` setup of one session's generation tabs."""

    def __init__(self, store: DataStore, mapper: LinearColorMapper, alert: pn.pane.Alert, device,
                 choose_field: Callable[[str], None]):
        self.store, self.mapper, self.alert, self.device = store, mapper, alert, device
        self.data: FieldData | None = None
        self.data_key = self.context = self.sampling = None
        self.field_control = pn.widgets.Select(label="Field", options=[], visible=False, sizing_mode="stretch_width")
        self.showing = False  # the control is being set to the drawn field: no choice of the user's
        self.field_control.param.watch(lambda event: self.showing or choose_field(event.new), "value")

    def field_changed(self, dataset: str, field: str) -> bool:
        """Whether the session's ``field`` is another field of ``dataset`` than the one drawn (then forgotten, to be
        loaded on next need)."""
        if self.data_key is None or self.data_key == (dataset, self._drawn(dataset, field)):
            return False
        self.forget()
        return True

    def _drawn(self, dataset: str, field: str) -> str | None:
        """The field the generation tabs draw of ``dataset``: ``field`` where it has it, else its first."""
        fields = field_choices(self.store, dataset)
        return field if field in fields else (fields or [None])[0]

    def forget(self) -> None:
        """The noise, schedule or dataset changed: set up again on next need."""
        self.context = self.sampling = None

    def ensure_context(self, dataset: str, field: str, noise: NoiseConfig, schedule: ScheduleConfig) -> Context:
        """The dataset's ``field`` (its first where it has no such field; loaded once per name and field; its spread
        sets the shared colour range), its spectrum and the analytic setup for ``noise`` and ``schedule``, with the
        smoothness warning shown when it applies."""
        if self.context is not None:
            return self.context
        key = (dataset, self._drawn(dataset, field))
        if self.data_key != key:
            self.data, self.data_key = load_fields(self.store.path(dataset), key[1]), key
            self._show_field(field_choices(self.store, dataset), self.data.variable)
            self.data_spectrum = radial_spectrum(self.data.fields)
            limit = 3 * float(self.data.fields.std())
            self.mapper.update(low=-limit, high=limit)
        setup = analytic_setup(self.data, noise, schedule)
        warning = smoothness_warning(setup)
        self.alert.object, self.alert.visible = warning, bool(warning)
        self.context = Context(self.data, setup, self.data_spectrum, noise, self.device)
        self.sampling = None
        return self.context

    def _show_field(self, fields: list[str], drawn: str) -> None:
        """The Field control lists the dataset's fields at the one drawn; shown where it has several."""
        self.showing = True
        try:
            self.field_control.param.update(options=fields, value=drawn, visible=len(fields) > 1)
        finally:
            self.showing = False

    def sampling_context(self, drift: str, noise: NoiseConfig, schedule: ScheduleConfig) -> Context:
        """The current context with the chosen drift: the exact one, or a trained generator's (one trained on
        another grid or noise is refused with the reason); a generator of several fields gets their states."""
        if self.sampling is None:
            self.sampling = self.context if drift == ANALYTIC else self._trained_context(drift, noise, schedule)
        return self.sampling

    def _trained_context(self, drift: str, noise: NoiseConfig, schedule: ScheduleConfig) -> Context:
        path = self.store.path(drift)
        variables = load_checkpoint(path, "cpu").get("data", {}).get("variables")
        if variables and self.data.variable not in variables:
            raise EngineError(f"{drift} generates {', '.join(variables)}; pick one of them in Field")
        state = load_state_fields(self.store.path(self.data_key[0]), variables) if variables else None
        setup = checkpoint_setup(str(path), state or self.data, noise, schedule, self.device, name=drift)
        return replace(self.context, setup=setup, state=state)
