"""One typed request per operation, built alike by the CLI, the dashboard and the job worker, and one runner for it.

A request is a dataclass of the operation's arguments: plain values (``option``: with the help text its CLI flag
shows) and ``param`` configs (``configs``: each parameter a flag, named by a prefix and renames). Its ``run`` makes
the operation's one pipeline call. ``options()`` turns it into plain values for a worker process and
``from_options`` back; the CLI builds its flags and reads its arguments from the same fields (``engine.cli``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import param

from engine.cluster import SCHEDULER_VARIABLE
from engine.config import options as config_values

# how the configs shared by several commands are spelled on the command line: (flag prefix, {parameter: flag})
NOISE_FLAGS = ("noise-", {"kind": "noise"})
SCHEDULE_FLAGS = ("schedule-", {"kind": "schedule", "beta_form": "beta-form", "gamma_sigma": "gamma-sigma"})
MODEL_FLAGS = ("model-", {"kind": "model"})
OVERWRITE = "replace --out if it exists (it is never one of the command's inputs)"
SCHEDULER = ("Dask scheduler, e.g. tcp://host:8786, that runs {parts} (default: $" + SCHEDULER_VARIABLE
             + ", else this process); the data folder must be shared")


def option(help: str, *, default: Any = None, required: bool = False, flag: str | None = None, **argparse) -> Any:
    """A plain field of a request with its CLI flag's help (``flag``: the flag's name when it is not the field's;
    ``argparse``: further ``add_argument`` keywords such as ``type`` or ``choices``)."""
    return field(default=default, metadata={"help": help, "required": required, "flag": flag, "argparse": argparse})


def configs(cls: type[param.Parameterized], prefix: str = "", renames: dict | None = None,
            skip: tuple[str, ...] = ()) -> Any:
    """A config field of a request: ``cls``'s parameters are its CLI flags, ``--<prefix><name>`` unless renamed
    (a renamed parameter drops the prefix), the ``skip``ped ones left out."""
    return field(default_factory=cls, metadata={"config": (cls, prefix, renames or {}, skip)})


@dataclass(kw_only=True)
class Request:
    """What an operation needs; subclasses name their ``command`` (the CLI command and the job kind) and ``run``."""

    command: ClassVar[str] = ""
    summary: ClassVar[str] = ""  # one line: the CLI command's help

    def run(self, *, store, callback: Callable[[dict], None] | None = None,
            should_stop: Callable[[], bool] | None = None):
        raise NotImplementedError

    @property
    def runs_on(self) -> str:
        """The device asked for (``auto``, ``cpu``, ``cuda``): its own ``device`` field, else a config's; GPU jobs
        run one at a time per device."""
        if isinstance(getattr(self, "device", None), str):
            return self.device
        for value in (getattr(self, f.name) for f in dataclasses.fields(self)):
            if isinstance(value, param.Parameterized) and "device" in value.param:
                return value.device
        return "auto"

    @property
    def target(self) -> str:
        """What it writes or works on, for a person: the run folder, the output or the input."""
        for name in ("out", "name", "checkpoint", "data"):
            if getattr(self, name, None):
                return str(getattr(self, name))
        return self.command

    def options(self) -> dict:
        """Plain values (configs as dicts of their parameters): picklable, for a worker process."""
        return {f.name: config_values(value) if isinstance(value, param.Parameterized) else value
                for f, value in ((f, getattr(self, f.name)) for f in dataclasses.fields(self))}

    @classmethod
    def from_options(cls, values: dict) -> Request:
        """The request back from ``options()`` (fields left out take their defaults)."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"{cls.__name__} has no field {', '.join(unknown)}")
        return cls(**{name: known[name].metadata["config"][0](**value) if "config" in known[name].metadata else value
                      for name, value in values.items()})
