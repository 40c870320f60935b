"""New datasets from the dashboard: generate GRF, Kolmogorov, QG-jet, Lorenz-96 or stochastic Allen–Cahn data at the
chosen resolution in a background job (the same generators and cached names as ``python -m engine data …``), or
import a netCDF file of fields (validated like ``data import``)."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Callable

import panel as pn
import param

from app.input_check import checked
from app.job_view import JobView
from engine.config import options
from engine.data.catalog import GENERATOR_CONFIGS
from engine.data.store import DataStore
from engine.data.well import is_well_file
from engine.errors import EngineError
from engine.jobs import JobManager
from engine.pipelines.generate_data import DataRequest

SMALL = {"grf": {"count": 64}, "kolmogorov": {"trajectories": 2, "snapshots": 40, "spin_up": 10.0},
         "qg": {"trajectories": 1, "snapshots": 40, "spin_up": 1e8, "perturbation": 1e-6},  # equilibrated by 10⁸ s
         "lorenz96": {"trajectories": 2, "snapshots": 200},
         "allen-cahn": {"trajectories": 2, "snapshots": 40}}  # defaults sized for a quick first try on 2 cores
INTEGER_WIDGETS = {name: checked(pn.widgets.IntInput) for name in ("size", "count", "trajectories", "snapshots", "slow",
                                                          "fast_per_slow", "save_every", "seed",
                                                          "forcing_wavenumber")}
FLOAT_INPUTS = {name: checked(pn.widgets.FloatInput) for name in ("length", "beta", "rek", "delta", "rd", "upper_flow",
                                                          "lower_flow", "dt", "save_interval", "spin_up",
                                                          "perturbation", "diffusivity", "noise_amplitude",
                                                          "noise_length", "noise_smoothness")}
WIDGETS = INTEGER_WIDGETS | FLOAT_INPUTS
HIDDEN = ("name", "device")  # generator parameters the card does not show (the job picks the device)


class NewDataView(JobView):
    """Generate a dataset with a generator's parameters (size = resolution), or import one; ``created(name)``
    is called with its name in the data folder when it is there."""

    label, start_label, request_type = "New dataset", "Generate", DataRequest
    shows_last_result = False  # its result switches the page to the new dataset: only for the page that asked
    status_name = "new-data-status"
    idle_text = "Generate a dataset, or import a netCDF file of fields (…, y, x) or a periodic 2-D HDF5 of The Well."
    generator = param.Selector(default="grf", objects=list(GENERATOR_CONFIGS), doc="which solver makes the data")

    def __init__(self, store: DataStore, jobs: JobManager, created: Callable[[str], None], *,
                 scheduler: Callable[[], str | None] = lambda: None, **params):
        super().__init__(jobs, **params)
        self.store, self.created, self.scheduler = store, created, scheduler
        self.configs = {kind: cls(name=kind, **SMALL[kind]) for kind, cls in GENERATOR_CONFIGS.items()}
        self.upload = pn.widgets.FileInput(accept=".nc,.hdf5,.h5", multiple=False, width=250)
        self.upload.param.watch(self._uploaded, "value")

    def _uploaded(self, event) -> None:
        self.import_bytes(self.upload.filename, event.new)

    def request(self) -> DataRequest:
        shown = {k: v for k, v in options(self.configs[self.generator]).items() if k not in HIDDEN}
        return DataRequest(generator=self.generator, config=GENERATOR_CONFIGS[self.generator](**shown),
                           scheduler=self.scheduler() or None)

    def _show_progress(self, events: list[dict]) -> None:
        last = events[-1]
        if "step" in last and "steps" in last:
            self.status.object = f"{self.label} job {self.job.id}: {last['step']} / {last['steps']}"

    def _show_result(self, result: dict) -> None:
        self.status.object = f"Made `{result['name']}`."
        self.created(result["name"])

    def import_bytes(self, filename: str | None, content: bytes | None) -> None:
        """Validate an uploaded netCDF file (or The Well's HDF5) and copy it into the data folder under its own name
        (an HDF5 file as netCDF: ``shear.hdf5`` → ``shear.nc``)."""
        if not content:
            return
        name = Path(filename or "imported.nc").name
        if not re.fullmatch(r"[\w][\w.-]*", name):
            self.fail(f"the uploaded file's name {filename!r} is not a plain file name; rename it (letters, digits, "
                      "'.', '_', '-') and upload it again", refused=True)
            return
        try:
            with tempfile.TemporaryDirectory() as folder:
                source = Path(folder) / name
                source.write_bytes(content)
                name = name if name.endswith(".nc") else f"{Path(name).stem if is_well_file(name) else name}.nc"
                self.store.import_file(source, name)
        except EngineError as err:
            self.fail(str(err), refused=True)
            return
        except OSError as err:  # the system's temporary folder is full or cannot be written
            self.fail(f"the upload could not be stored for checking: {os.strerror(err.errno) if err.errno else err}")
            return
        self.failure.visible = False
        self.status.object = f"Imported `{name}`."
        self.created(name)

    def __panel__(self):
        generator = pn.widgets.Select.from_param(self.param.generator, label="Generator", width=270)
        settings = pn.bind(lambda kind: pn.Param(self.configs[kind], widgets=WIDGETS, show_name=False,
                                                 parameters=[p for p in self.configs[kind].param if p not in HIDDEN],
                                                 width=270), self.param.generator)
        upload = pn.pane.Markdown("**Import** a netCDF file of fields, or The Well's HDF5:")
        return pn.Card(pn.Column(generator, settings, pn.Row(self.start_button, self.stop_button), self.status,
                                 self.failure, self.job_settings, upload, self.upload),
                       title="New dataset", collapsed=True, width=300)
