"""What the generation tabs (Interpolant, Sample, Compare) share in one session: the field dataset, its spectrum and
colour range, the analytic setup for the chosen noise and schedule, and the drift Sample and Compare integrate.
Each is made on first need and dropped when what it depends on changes."""
from __future__ import annotations

import panel as pn
from bokeh.models import LinearColorMapper

from app.generation_views import Context
from engine.checkpoints import list_runs
from engine.config import NoiseConfig, ScheduleConfig
from engine.data.fields import FieldData, load_fields
from engine.data.store import DataStore
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


def drift_choices(store: DataStore) -> dict[str, str]:
    """The drifts to choose from: the exact one, and every generator trained in the data folder."""
    trained = {f"{row['run']} (trained on {row['data'] or 'its data'}, step {row['step']})": row["path"]
               for row in list_runs(store.root) if row["task"] == "generate"}
    return {"exact (Gaussian with the data's spectrum)": ANALYTIC, **trained}


class GenerationState:
    """The field data, the analytic ``context`` and the ``sampling`` setup of one session's generation tabs."""

    def __init__(self, store: DataStore, mapper: LinearColorMapper, alert: pn.pane.Alert, device):
        self.store, self.mapper, self.alert, self.device = store, mapper, alert, device
        self.data: FieldData | None = None
        self.data_name = self.context = self.sampling = None

    def forget(self) -> None:
        """The noise, schedule or dataset changed: set up again on next need."""
        self.context = self.sampling = None

    def ensure_context(self, dataset: str, noise: NoiseConfig, schedule: ScheduleConfig) -> Context:
        """The field dataset (loaded once per name; its spread sets the shared colour range), its spectrum and the
        analytic setup for ``noise`` and ``schedule``, with the smoothness warning shown when it applies."""
        if self.context is not None:
            return self.context
        if self.data_name != dataset:
            self.data, self.data_name = load_fields(self.store.path(dataset)), dataset
            self.data_spectrum = radial_spectrum(self.data.fields)
            limit = 3 * float(self.data.fields.std())
            self.mapper.update(low=-limit, high=limit)
        setup = analytic_setup(self.data, noise, schedule)
        warning = smoothness_warning(setup)
        self.alert.object, self.alert.visible = warning, bool(warning)
        self.context = Context(self.data, setup, self.data_spectrum, noise, self.device)
        self.sampling = None
        return self.context

    def sampling_setup(self, drift: str, noise: NoiseConfig, schedule: ScheduleConfig) -> Setup:
        """The chosen drift on the current context: the exact one, or a trained generator's (one trained on
        another grid or noise is refused with the reason)."""
        if self.sampling is None:
            self.sampling = self.context.setup if drift == ANALYTIC else checkpoint_setup(
                str(self.store.path(drift)), self.data, noise, schedule, self.device, name=drift)
        return self.sampling
