"""Predictor-driven diffusion (PDD; Yasuda & Bischoff; docs/science.md): one λ-conditioned predictor, three uses.

Forward process in λ (``engine.coarse``), applied to every frame of a sequence with independent noise:

    x̂_λ = e^{μ_k λ} x̂_0 + sqrt(Q_k(λ)) ε̂,   Q_k(λ) = b² (e^{2μ_k λ} − 1)/(2μ_k),   μ_k < 0 (Laplacian eigenvalue).

Predictor ``F_θ(x_{n−w+1..n}; λ) ≈ E[x_{n+1} − x_n | past]`` (a U-Net over the last w frames, zero-padded at the
start of a sequence, conditioned on λ), trained at λ ~ U[0, 1] (or λ = u², denser near 0) with the paper's loss
``mean(((x_{n+1} − x_n) − F_θ)² / mean_k Q_k(λ))`` in normalized units (``engine.tasks.pdd``).

Path model: ``x_{n+1} = x_n + F_θ + η_n`` with Gaussian η of per-mode variance ``V_k(λ)``: the paper's
``r² mean_k Q_k(λ)`` (``scalar``) or ``r² Q_k(λ)`` (``spectral``: the variance the forward process actually gives
each mode; r = std_ratio), and a Gaussian first frame of per-mode variance ``v_k(λ) = e^{2μλ} P_k + Q_k``
(P_k: the data's).
Action ``S = ½ Σ_n Σ_k |r̂_{n,k}|²/V_k + ½ Σ_k |x̂_{0,k}|²/(e^{2μλ}P_k + Q_k)``, path score ``s = −∂S/∂x`` (autograd).
Q is floored at λ = 10⁻³ (the reference's first grid point), where the variance would vanish.

Reverse λ by the exponential (ETD1) step, from the input's λ to 0 (uniform grid, or geometric: ``lambda_grid``):

    x̂ ← e^{−μ dλ} x̂ + dλ w b² φ₁(−μ dλ) ŝ + b √dλ ε̂,   φ₁(z) = (e^z − 1)/z,

with w = 1 and noise (``sde``; none on the last step) or w = ½ and no noise (``ode``, the probability-flow ODE).
The ``gaussian`` integrator instead takes the exact step of Gaussian frames with the data's spectrum (score
``−x̂/v_k(λ)``: the DDPM-like posterior mean and noise per mode) and the ETD1 kick for the rest of the score: exact
for Gaussian fields at any step count, and stable on fine grids where ETD1 needs ``|μ|max dλ ≲ 1``.
Generation starts at λ = 1 from ``sqrt(Q(1)) ε``; super-resolution starts from a coarse input at its λ;
simulation at a fixed λ steps ``x_{n+1} = x_n + F_θ + η_n``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from engine.checkpoints import load_checkpoint
from engine.coarse import OUProcess, check_lambda
from engine.config import PDDSamplerConfig
from engine.devices import accelerate
from engine.diagnostics import line_spectra
from engine.errors import EngineError
from engine.models import build_unet
from engine.spectral import ortho_fft, ortho_ifft

Tensor = torch.Tensor
LAM_FLOOR = 1e-3  # Q_k(λ) is evaluated at max(λ, LAM_FLOOR): the path model needs a positive variance


def mode_power(fields: Tensor, ndim: int, channels: int = 1) -> Tensor:
    """Per-mode variance ``P_k = mean |x̂_k|²`` (ortho FFT) over every leading index: (..., *grid) → grid, float64;
    states of C > 1 fields (..., C, *grid) → (C, *grid), each field's."""
    xh = ortho_fft(fields.to(torch.float64), ndim)
    state = fields.shape[-ndim - 1:] if channels > 1 else fields.shape[-ndim:]
    return (xh.real**2 + xh.imag**2).reshape(-1, *state).mean(0)


def forward_sample(x: Tensor, lam: Tensor, process: OUProcess, generator: torch.Generator | None = None) -> Tensor:
    """Every frame of x (batch, frames, *state) at its sample's λ (batch,): ``e^{μλ} x̂ + sqrt(Q(λ)) ε̂`` (state: the
    grid, or (C, *grid) for C fields, each damped alike)."""
    n, ndim = x.shape[-1], process.ndim
    per_sample = (x.shape[0],) + (1,) * (x.dim() - 1 - ndim) + x.shape[-ndim:]
    damping = process.damping(lam, n, x.device).to(x.dtype).reshape(per_sample)
    spread = process.variance(lam, n, x.device).sqrt().to(x.dtype).reshape(per_sample)
    white = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return ortho_ifft(damping * ortho_fft(x, ndim) + spread * ortho_fft(white, ndim), ndim)


def phi1(z: Tensor) -> Tensor:
    """``φ₁(z) = (e^z − 1)/z``, 1 at z = 0."""
    small = z.abs() < 1e-12
    return torch.where(small, torch.ones_like(z), torch.expm1(z) / torch.where(small, torch.ones_like(z), z))


def window_stack(x: Tensor, window: int) -> Tensor:
    """Inputs of every transition n → n + 1 of x (batch, T, *grid): frames n − w + 1 … n, zeros before the start;
    → (batch·(T − 1), w, *grid)."""
    pad = x.new_zeros(x.shape[0], window - 1, *x.shape[2:])
    windows = torch.cat([pad, x[:, :-1]], 1).unfold(1, window, 1)  # (batch, T − 1, *grid, w)
    return windows.movedim(-1, 2).reshape(-1, window, *x.shape[2:])


def net_increment(net: torch.nn.Module, windows: Tensor, lam: Tensor, ndim: int) -> Tensor:
    """``F_θ`` of windows (batch, w, *state) at λ (batch,) → (batch, *state); a state of C fields (C, *grid) reaches
    the network as w·C channels and comes back as C."""
    several = windows.dim() == 3 + ndim
    out = net(windows.flatten(1, 2) if several else windows, lam.float())
    return (out if several else out[:, 0]).float()


def increments(net: torch.nn.Module, x: Tensor, lam: Tensor, window: int, ndim: int) -> Tensor:
    """``F_θ`` for every transition of x (batch, T, *state) at λ (batch,): (batch, T − 1, *state)."""
    batch, frames = x.shape[:2]
    out = net_increment(net, window_stack(x, window), lam.repeat_interleave(frames - 1), ndim)
    return out.reshape(batch, frames - 1, *x.shape[2:])


def mean_variance(process: OUProcess, lam: Tensor, n: int) -> Tensor:
    """``mean_k Q_k(max(λ, 10⁻³))`` per sample: (batch,) → (batch,)."""
    q = process.variance(lam.clamp(min=LAM_FLOOR), n, lam.device)
    return q.reshape(lam.shape[0], -1).mean(1)


@dataclass
class PDD:
    """A trained predictor with its forward process, in normalized units (``normalize``/``denormalize`` map)."""

    net: torch.nn.Module
    process: OUProcess
    window: int
    frames: int
    std_ratio: float
    mean: float | Tensor  # one per field (C, 1, 1) for states of several
    std: float | Tensor
    dt: float
    power: Tensor  # P_k of the normalized data, on the full FFT grid; (C, *grid) for C fields
    variable: str = "vorticity"
    nfe: int = 0
    variables: tuple[str, ...] = ()  # the fields of a state of several

    @property
    def n(self) -> int:
        return self.power.shape[-1]

    @property
    def ndim(self) -> int:
        return self.process.ndim

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def normalize(self, x: Tensor) -> Tensor:
        return (x.float() - self.mean) / self.std

    def denormalize(self, x: Tensor) -> Tensor:
        return x * self.std + self.mean

    def path_variance(self, lam: float, kind: str) -> Tensor:
        """``V_k(λ)``: ``r² Q_k`` (spectral) or ``r² mean_k Q_k`` (scalar) at max(λ, 10⁻³), on the grid, float32."""
        q = self.process.variance(max(lam, LAM_FLOOR), self.n, self.device)
        q = q if kind == "spectral" else torch.full_like(q, float(q.mean()))
        return (self.std_ratio**2 * q).float()

    def marginal_variance(self, lam: float) -> Tensor:
        """Per-mode variance of one frame at λ for Gaussian data of power P_k: ``e^{2μλ} P_k + Q_k(λ)``, float64."""
        damping = self.process.damping(lam, self.n, self.device)
        variance = damping**2 * self.power.to(self.device) + self.process.variance(lam, self.n, self.device)
        return variance.clamp(min=1e-12)

    def predict(self, x: Tensor, lam: float) -> Tensor:
        """F_θ for every transition of x (batch, T, *grid), normalized units."""
        self.nfe += 1
        return increments(self.net, x, torch.full((x.shape[0],), float(lam), device=x.device), self.window,
                          self.ndim)

    def action(self, x: Tensor, lam: float, kind: str = "spectral") -> Tensor:
        """``S(x; λ)`` per sequence: x (batch, T, *grid) → (batch,)."""
        residual = ortho_fft((x[:, 1:] - x[:, :-1]) - self.predict(x, lam), self.ndim)
        first = ortho_fft(x[:, 0], self.ndim)
        transitions = (residual.abs() ** 2 / self.path_variance(lam, kind)).flatten(1).sum(1)
        return 0.5 * (transitions + (first.abs() ** 2 / self.marginal_variance(lam).float()).flatten(1).sum(1))

    def score(self, x: Tensor, lam: float, kind: str = "spectral") -> Tensor:
        """The path score ``−∂S/∂x`` (autograd), same shape as x."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.action(x, lam, kind).sum(), x)
        return -grad

    def lambda_grid(self, lam0: float, steps: int, kind: str) -> list[float]:
        """``steps + 1`` values from λ0 down to 0: uniform (the paper's), or geometric from λ0 to ``0.1/|μ|max``
        (each mode is decided near λ ≈ 1/|μ_k|: equal steps per octave of scale) and then 0."""
        lam_min = 0.1 / float(-self.process.rates(self.n).min())
        if kind == "uniform" or steps < 2 or lam0 <= lam_min:
            return [lam0 * (1 - i / steps) for i in range(steps + 1)]
        ratio = lam_min / lam0
        return [lam0 * ratio ** (i / (steps - 1)) for i in range(steps)] + [0.0]

    def reverse(self, x: Tensor, sampler: PDDSamplerConfig, generator: torch.Generator | None = None, *,
                callback: Callable[[dict], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> Tensor:
        """Integrate normalized sequences x (batch, T, *grid) from λ = ``sampler.lam`` to 0 (module doc)."""
        lam0 = check_lambda(sampler.lam)
        if lam0 == 0:
            return x.clone()
        grid = self.lambda_grid(lam0, sampler.steps, sampler.grid)
        for i, (lam, lam_next) in enumerate(zip(grid[:-1], grid[1:])):
            growth, kick, spread, gain = self._step_factors(lam, lam_next, sampler)
            s = self.score(x, lam, sampler.variance)
            with torch.no_grad():
                xh = ortho_fft(x, self.ndim)
                xh = growth * xh + kick * (ortho_fft(s, self.ndim) + gain * xh)
                if spread is not None:
                    xh = xh + spread * ortho_fft(torch.randn(x.shape, generator=generator, device=x.device), self.ndim)
                x = ortho_ifft(xh, self.ndim)
            if callback is not None:
                callback({"kind": "progress", "step": i + 1, "steps": sampler.steps, "lam": lam_next, "state": x})
            if should_stop is not None and should_stop():
                raise EngineError(f"stopped at λ = {lam_next:.4g}")
        return x

    def _step_factors(self, lam: float, lam_next: float, sampler: PDDSamplerConfig):
        """Per-mode (growth, kick, noise std or None, c) of one step λ → λ' = λ − h:
        x̂' = growth x̂ + kick (ŝ + c x̂) + std ε̂.

        etd1: growth e^{−μh}, kick h w b² φ₁(−μh), c = 0, std b√h (none on the last step).
        gaussian: the exact step for Gaussian frames of variance v(λ) = e^{2μλ}P + Q(λ), whose score is −x̂/v
        (c = 1/v): growth e^{μh} v'/v and std sqrt(v' Q(h)/v) (the posterior; sde), or sqrt(v'/v) (ode); the rest
        of the score gets the exponential kick h w b² φ₁(log growth).
        """
        h, b2 = lam - lam_next, self.process.b2
        weight = 1.0 if sampler.method == "sde" else 0.5
        if sampler.integrator == "etd1":
            z = -self.process.rates(self.n, self.device) * h
            spread = math.sqrt(b2 * h) if sampler.method == "sde" and lam_next > 0 else None
            return torch.exp(z).float(), (h * weight * b2 * phi1(z)).float(), spread, 0.0
        v, v_next = self.marginal_variance(lam), self.marginal_variance(lam_next)
        if sampler.method == "sde":
            growth = self.process.damping(h, self.n, self.device) * v_next / v
            spread = (v_next * self.process.variance(h, self.n, self.device) / v).sqrt().float()
        else:
            growth, spread = (v_next / v).sqrt(), None
        kick = h * weight * b2 * phi1(torch.log(growth))
        return growth.float(), kick.float(), spread, (1 / v).float()

    def coarse_grain(self, x: Tensor, lam: float, generator: torch.Generator | None = None) -> Tensor:
        """Normalized sequences (batch, T, *grid) at λ: the forward process on every frame."""
        return forward_sample(x, torch.full((x.shape[0],), float(check_lambda(lam)), device=x.device), self.process,
                              generator)

    def signal_to_noise(self, lam: float) -> Tensor:
        """Per-mode ``e^{2μλ} P_k / Q_k(λ)``: how much of the data a frame at λ still carries (float64, the grid)."""
        q = self.process.variance(max(lam, LAM_FLOOR), self.n, self.device)
        return self.process.damping(lam, self.n, self.device) ** 2 * self.power.to(self.device) / q

    def prior_sample(self, lam: float, shape: tuple, generator: torch.Generator | None = None) -> Tensor:
        """Gaussian sequences with the λ-marginal's per-mode variance ``v_k(λ) = e^{2μλ} P_k + Q_k(λ)`` (P_k: the
        data's): the start of generation at λ. Pure noise Q_k(λ) would not be one: at λ = 1 with a = 0.3, b² = 2
        on the 64² Kolmogorov data the modes |k| ≤ 2 keep a signal-to-noise ratio ≈ 5 (``signal_to_noise``)."""
        white = torch.randn(shape, generator=generator, device=self.device)
        spread = self.marginal_variance(lam).sqrt().float()
        return ortho_ifft(spread * ortho_fft(white, self.ndim), self.ndim)

    def stepper(self, lam: float, kind: str = "spectral", noise: bool = True,
                generator: torch.Generator | None = None) -> "Stepper":
        return Stepper(self, check_lambda(lam), kind, noise, generator)


class Stepper:
    """Simulation at fixed λ as a one-step map in physical units: ``x_{n+1} = x_n + F_θ(window; λ) + η_n``,
    η with per-mode variance V_k(λ); it remembers the last w − 1 states it was given (zeros before the first)."""

    def __init__(self, model: PDD, lam: float, kind: str, noise: bool, generator: torch.Generator | None):
        self.model, self.lam, self.noise, self.generator = model, lam, noise, generator
        self.spread = model.path_variance(lam, kind).sqrt()
        self.history: list[Tensor] = []

    @torch.no_grad()
    def __call__(self, u: Tensor) -> Tensor:
        model = self.model
        x = model.normalize(u)
        self.history = (self.history + [x])[-model.window:]
        window = torch.stack([torch.zeros_like(x)] * (model.window - len(self.history)) + self.history, 1)
        model.nfe += 1
        x_next = x + net_increment(model.net, window, torch.full((x.shape[0],), self.lam, device=x.device), model.ndim)
        if self.noise:
            white = torch.randn(x.shape, generator=self.generator, device=x.device)
            x_next = x_next + ortho_ifft(self.spread * ortho_fft(white, model.ndim), model.ndim)
        return model.denormalize(x_next)


def simulate_at_lambda(model: PDD, initial: Tensor, *, lam: float, steps: int, kind: str = "spectral",
                       noise: bool = True, generator: torch.Generator | None = None) -> Tensor:
    """``steps`` fixed-λ steps from initial (batch, *grid) physical units: (batch, steps + 1, *grid)."""
    stepper, states = model.stepper(lam, kind, noise, generator), [initial.float()]
    for _ in range(steps):
        states.append(stepper(states[-1]))
    return torch.stack(states, 1)


@dataclass
class FixedLambdaSpectra:
    """Fixed-λ simulations against the physics: their mean line PSD after a transient of steps / 5 (None if one
    diverged) and the physics' PSD coarse-grained at λ (1-D states, ``engine.diagnostics.line_spectra``)."""

    psd: Tensor | None
    reference: Tensor


def fixed_lambda_spectra(model: PDD, physics: Tensor, *, lam: float, members: int, steps: int,
                         noise: bool = True) -> FixedLambdaSpectra:
    """``members`` simulations at λ from states of ``physics`` (trajectory, time, K) coarse-grained at λ, spread
    over its trajectories and times, scored as paper 002 plots them (PSD of the surrogate against the physics)."""
    truth = model.denormalize(model.coarse_grain(model.normalize(physics), lam, torch.Generator().manual_seed(0)))
    reference = line_spectra(truth).reshape(-1, model.n // 2 + 1).mean(0)
    starts = truth[torch.arange(members) % truth.shape[0], (torch.arange(members) * 97) % truth.shape[1]]
    states = simulate_at_lambda(model, starts, lam=lam, steps=steps, noise=noise,
                                generator=torch.Generator().manual_seed(0))
    if not torch.isfinite(states).all():
        return FixedLambdaSpectra(None, reference)
    return FixedLambdaSpectra(line_spectra(states[:, steps // 5:]).reshape(-1, model.n // 2 + 1).mean(0), reference)


def load_pdd(path: str | Path, device: torch.device | str = "cpu", precision: str = "auto",
             compile: bool = False) -> PDD:
    """The predictor of a ``train --task pdd`` checkpoint (EMA weights) with its forward process and data statistics;
    its network runs at ``precision`` (auto: bfloat16 on CUDA, float32 on CPU), through ``torch.compile`` if asked."""
    state = load_checkpoint(path, device)
    if state.get("task") != "pdd":
        raise EngineError(f"{path} holds a '{state.get('task', 'generate')}' model, not a PDD predictor; "
                          "train one with --task pdd")
    configs, data = state["configs"], state["data"]
    config, variables = configs["pdd"], tuple(data.get("variables", ()))
    fields = max(1, len(variables))
    net = build_unet(configs["model"]["size"], in_channels=config["window"] * fields, out_channels=fields,
                     ndim=data["ndim"]).to(device)
    net.load_state_dict(state["ema_state"])
    process = OUProcess(config["a"], config["b2"], data["ndim"])
    runner = accelerate(net.eval(), torch.device(device), precision, compile)
    mean, std = (torch.as_tensor(data[key]).to(device) if variables else data[key] for key in ("mean", "std"))
    return PDD(runner, process, config["window"], config["frames"], config["std_ratio"], mean, std,
               data["dt"], data["power"].to(device), data["variable"], variables=variables)
