"""Generation from noise (papers 000 and 003): regress ``b_θ(t, x_t)`` on the interpolant target
``α' x0 + β' x1 + γ' z`` with x0 of the chosen noise spectrum, in normalized units.

The residual is measured mode by mode with weights ``(S_n,k / mean S_n)^(−p)`` (``spectral_weight`` p): the
conditional mean is still the minimizer, but fine modes, whose variance is a tiny part of the pixel L2,
count. Measured on 32² GRFs with power-law noise: spectral error at 16 Euler steps 0.81 with p = 0 and 0.25
with p = 0.25 (the exact drift's is 0.24). docs/science.md has the math.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.config import NoiseConfig, ScheduleConfig, options
from engine.data.fields import FieldData, StateFieldData
from engine.errors import EngineError
from engine.generation import build_schedule, state_schedule, state_spectra
from engine.interpolants import apply_modal, interpolate, velocity_target
from engine.models import build_unet
from engine.noise import cross_colouring, matched_spectrum, noise_spectrum, sample_noise
from engine.spectral import apply_mode_matrix

T_EPS = 1e-3  # keeps training times off the ends, where √-type schedules have unbounded derivatives


@dataclass
class Problem:
    """A generation problem in normalized units: data, noise spectrum, schedule."""

    fields: torch.Tensor  # (M, n, n) data divided by ``scale``
    scale: float
    noise_power: torch.Tensor  # (n, n)
    data_power: torch.Tensor  # (n, n)
    schedule: object


def make_problem(data: FieldData, noise: NoiseConfig, schedule: ScheduleConfig) -> Problem:
    """Normalize the data to unit pixel variance and build the noise spectrum and schedule for it."""
    scale = float(data.fields.std())
    if not scale > 0:
        raise EngineError("the data fields are constant: there is nothing to learn")
    shell = data.spectrum / scale**2
    n = data.n
    noise_power = noise_spectrum(noise.kind, n, shell, noise.exponent)
    data_power = matched_spectrum(shell, n)
    return Problem(data.fields / scale, scale, noise_power, data_power,
                   build_schedule(schedule, n, data_power, noise_power))


def loss_weights(noise_power: torch.Tensor, power: float) -> torch.Tensor:
    """Per-mode residual weights ``(S_n / mean S_n)^(−p)`` on the rfft2 half-grid; 1 where S_n = 0 (the mean)."""
    half = noise_power[:, : noise_power.shape[-1] // 2 + 1]
    positive = half > 0
    mean = half[positive].mean()
    return torch.where(positive, (half / mean).clamp(min=1e-30) ** (-power), 1.0).float()


class GenerativeTask:
    """Generation from noise: regress ``b_θ(t, x_t)`` on ``α' x0 + β' x1 + γ' z`` with x0 of the chosen spectrum."""

    kind, spatial_dims = "generate", 2
    make_problem = staticmethod(make_problem)

    def __init__(self, data: FieldData, noise: NoiseConfig, schedule: ScheduleConfig, spectral_weight: float = 0.0,
                 data_source: str = ""):
        self.data, self.data_source, self.spectral_weight = data, data_source, spectral_weight
        self.configs = {"noise": options(noise), "schedule": options(schedule)}
        self.problem = self.make_problem(data, noise, schedule)
        self.uses_gamma = float(self.problem.schedule(0.5).gamma) != 0

    def network(self, size: str) -> torch.nn.Module:
        """The drift b_θ(t, x): a U-Net over one field."""
        return build_unet(size)

    def to(self, device: torch.device) -> None:
        self.device = device
        self.fields = self.problem.fields.to(device)
        self.noise_power = self.problem.noise_power.to(device)
        self.weights = loss_weights(self.noise_power, self.spectral_weight)

    def describe(self) -> dict:
        """What a checkpoint records about the task: its configs and the data it was trained on."""
        return {"configs": self.configs,
                "data": {"n": self.data.n, "scale": self.problem.scale, "spectrum": self.data.spectrum.cpu(),
                         "variable": self.data.variable, "source": self.data_source}}

    def draw(self, batch: int, generator: torch.Generator) -> tuple:
        """Everything random in a batch, batch-first: data x1, noise x0, times t, and z (``None`` when γ ≡ 0)."""
        x1 = self.fields[torch.randint(self.fields.shape[0], (batch,), generator=generator, device=self.device)]
        x0 = sample_noise(self.noise_power, batch, generator)
        t = T_EPS + (1 - 2 * T_EPS) * torch.rand(batch, generator=generator, device=self.device, dtype=torch.float64)
        z = torch.randn(x1.shape, generator=generator, device=self.device) if self.uses_gamma else None
        return x1, x0, t, z

    def predict(self, net: torch.nn.Module, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``b_θ(t, x_t)`` for a batch of fields (batch, n, n)."""
        return net(xt[:, None], t.float())[:, 0]

    def loss(self, net: torch.nn.Module, drawn: tuple) -> torch.Tensor:
        """``mean |W (b_θ(t, x_t) − (α' x0 + β' x1 + γ' z))|²`` over a drawn batch (W: the spectral weights)."""
        x1, x0, t, z = drawn
        c = self.problem.schedule(t)
        xt, target = interpolate(c, x0, x1, z), velocity_target(c, x0, x1, z)
        prediction = self.predict(net, xt, t)
        residual = prediction.float() - target
        if self.spectral_weight > 0:
            residual = apply_modal(residual, self.weights)
        return torch.mean(residual**2)


@dataclass
class StateProblem:
    """A generation problem for states of C fields in normalized units (each field divided by its own ``scales``):
    the states, the noise and data spectra (``engine.generation.state_spectra``) and the schedule."""

    fields: torch.Tensor  # (M, C, n, n)
    scales: torch.Tensor  # (C,)
    spectra: dict
    schedule: object


def make_state_problem(data: StateFieldData, noise: NoiseConfig, schedule: ScheduleConfig) -> StateProblem:
    """Normalize each field to unit pixel variance (cross-spectra ``S_ab / (σ_a σ_b)``) and build the noise of C fields
    (matched: correlated across the fields as the data) and the schedule for them."""
    scales = data.fields.transpose(0, 1).flatten(1).double().std(1)
    constant = [name for name, scale in zip(data.variables, scales) if not scale > 0]
    if constant:
        raise EngineError(f"the field {', '.join(constant)} is constant: there is nothing to learn")
    cross = data.cross_spectrum / (scales[:, None, None] * scales[None, :, None])
    spectra = state_spectra(cross, data.n, noise)
    return StateProblem(data.fields / scales.float()[None, :, None, None], scales, spectra,
                        state_schedule(schedule, spectra))


class StateGenerativeTask(GenerativeTask):
    """Generation of states of C fields: the same regression on (C, n, n), with noise coloured across the fields
    by its cross-spectral matrix (``engine.noise.cross_noise_spectra``) and one U-Net over all C channels."""

    make_problem = staticmethod(make_state_problem)

    def network(self, size: str) -> torch.nn.Module:
        """The drift b_θ(t, x): a U-Net over the C fields of a state."""
        return build_unet(size, self.data.channels, self.data.channels)

    def to(self, device: torch.device) -> None:
        self.device = device
        self.fields = self.problem.fields.to(device)
        self.noise_factor = cross_colouring(self.problem.spectra["noise_cross"]).to(device)
        self.weights = loss_weights(self.problem.spectra["noise_power"].mean(0).to(device), self.spectral_weight)

    def describe(self) -> dict:
        """Its configs and the data: the fields' names, scales σ_c and shell cross-spectra (physical units)."""
        return {"configs": self.configs,
                "data": {"n": self.data.n, "scales": self.problem.scales.tolist(),
                         "cross_spectrum": self.data.cross_spectrum.cpu(), "variables": list(self.data.variables),
                         "source": self.data_source}}

    def draw(self, batch: int, generator: torch.Generator) -> tuple:
        """Data states x1, noise x0 (white noise coloured across the fields), times t, and z (``None`` when γ ≡ 0)."""
        x1 = self.fields[torch.randint(self.fields.shape[0], (batch,), generator=generator, device=self.device)]
        white = torch.randn(x1.shape, generator=generator, device=self.device)
        x0 = apply_mode_matrix(white, self.noise_factor)
        t = T_EPS + (1 - 2 * T_EPS) * torch.rand(batch, generator=generator, device=self.device, dtype=torch.float64)
        z = torch.randn(x1.shape, generator=generator, device=self.device) if self.uses_gamma else None
        return x1, x0, t, z

    def predict(self, net: torch.nn.Module, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``b_θ(t, x_t)`` for a batch of states (batch, C, n, n)."""
        return net(xt, t.float())
