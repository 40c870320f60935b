"""Emulators of ``u_n → u_{n+1}``: the stochastic-interpolant forecaster and its baselines (docs/science.md §2).

SI forecaster (paper 001): ``I_t = (1 − t) x + t y + σ(1 − t)√t z`` between the current state x and the next
y; the drift ``b(t, I; x) = E[(y − x) − σ√t z | I_t, x]`` is learned by regression (antithetic ±z) with the
network seeing cat(x, I_t). With diffusion ``g(t)`` the SDE ``dY = [b + ½(g² − σ_t²) s] dt + g dW``,
``σ_t = σ(1 − t)``, has the interpolant's marginals for every g; the score follows from b:
``σ_t² s = (1 − t)(t b − (Y − x))/t``. We use ``g = ε σ_t``: ``si_em`` (paper 001's SI-EM; ε = 1 needs no
score), ``si_e`` (paper 001's SI-E: Euler on b with the noise dropped, the reference code's "euler"), and
``pf_ode`` (ε = 0: the exact probability-flow ODE, our addition, with the interpolant's marginals).

Baselines: a conditional generator from Gaussian noise, ``I_t = (1 − t) z + t y`` given x (flow matching),
an autoregressive diffusion model of y given x in the EDM parametrization (Karras et al. 2022: the "many steps"
reference of papers 001, 002 and 004), the same as a DDPM (Ho et al. 2020: ε-prediction on the cosine schedule over
K levels, ancestral sampling in strided steps; the papers' DDPM baseline), a pointwise U-Net predicting ``y − x``,
optionally trained on an unrolled multi-step MSE (paper 004, appendix B.2), and the same residual map as a Fourier
neural operator (paper 001's FNO baseline). Fields are normalized by the dataset's mean and std.
"""
from __future__ import annotations

from pathlib import Path

import torch

from engine.checkpoints import load_checkpoint, trained_variables
from engine.config import ForecastSamplerConfig
from engine.data.sequences import per_channel
from engine.devices import accelerate
from engine.errors import EngineError
from engine.models import build_fno, build_unet
from engine.sns import (
    SNS_LEVELS,
    PairDenoiser,
    SelfRefiner,
    cosine_alpha_bar,
    ddpm_step,
    frames_as_channels,
    level_ladder,
    level_of_noise_fraction,
    per_sample,
)

Tensor = torch.Tensor
FORECAST_TASKS = ("forecast", "noise_baseline", "diffusion", "ddpm", "pointwise", "fno", "sns")
IN_CHANNELS = {"forecast": 2, "noise_baseline": 2, "diffusion": 2, "ddpm": 2, "pointwise": 1}  # cat(x, I_t), or x
RESIDUAL_TASKS = ("pointwise", "fno")  # û_{n+1} = u_n + F_θ(u_n), trained on the unrolled MSE
EDM_SIGMA_DATA, EDM_P_MEAN, EDM_P_STD = 1.0, -1.2, 1.2  # unit-variance data; training levels ln σ ~ N(−1.2, 1.2²)
EDM_SIGMA_MIN, EDM_SIGMA_MAX, EDM_RHO = 0.002, 40.0, 7.0  # the sampler's noise levels


def forecast_network(kind: str, size: str, levels: int = SNS_LEVELS, channels: int = 1) -> torch.nn.Module:
    """The network a forecast task trains on states of ``channels`` fields: a U-Net over cat(x, I_t) (or x alone)
    predicting the C fields, an FNO of x alone, or SNS's pair denoiser."""
    if kind == "sns":
        return PairDenoiser(size, levels, channels)
    if kind == "fno":
        return build_fno(size, in_channels=channels, out_channels=channels)
    return build_unet(size, in_channels=IN_CHANNELS[kind] * channels, out_channels=channels)


def edm_scalings(sigma: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """EDM's preconditioning at noise level σ (σ_d = 1): ``c_skip = σ_d²/(σ² + σ_d²)``, ``c_out = σ σ_d/√(σ² +
    σ_d²)``, ``c_in = 1/√(σ² + σ_d²)``, ``c_noise = ¼ ln σ``; broadcast over (batch, C, n, n) from (batch,)."""
    s = sigma[:, None, None, None]
    norm = (s**2 + EDM_SIGMA_DATA**2).sqrt()
    return EDM_SIGMA_DATA**2 / norm**2, s * EDM_SIGMA_DATA / norm, 1 / norm, sigma.log() / 4


def edm_denoise(net, x: Tensor, noisy: Tensor, sigma: Tensor) -> Tensor:
    """``D(y; σ, x) = c_skip y + c_out F_θ(cat(x, c_in y); c_noise)``: the denoised next state given the current;
    x, noisy: (batch, C, n, n)."""
    c_skip, c_out, c_in, c_noise = edm_scalings(sigma)
    return c_skip * noisy + c_out * net(torch.cat([x, c_in * noisy], 1), c_noise).float()


def edm_sigmas(steps: int, device=None) -> list[float]:
    """Karras et al.'s levels ``σ_i = (σ_max^(1/ρ) + i/(N − 1) (σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ``, then 0."""
    if steps == 1:
        return [EDM_SIGMA_MAX, 0.0]
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    top, bottom = EDM_SIGMA_MAX ** (1 / EDM_RHO), EDM_SIGMA_MIN ** (1 / EDM_RHO)
    return ((top + ramp * (bottom - top)) ** EDM_RHO).tolist() + [0.0]


def edm_heun(denoise, noise: Tensor, steps: int) -> Tensor:
    """Karras et al.'s deterministic sampler (their Algorithm 1): Heun steps of ``dy/dσ = (y − D(y; σ))/σ`` from
    ``y = σ_max z`` down to σ = 0; 2N − 1 evaluations of the denoiser ``denoise(y, σ)``."""
    sigmas = edm_sigmas(steps)
    y = noise * sigmas[0]
    for sigma, after in zip(sigmas[:-1], sigmas[1:]):
        slope = (y - denoise(y, sigma)) / sigma
        moved = y + (after - sigma) * slope
        if after > 0:
            moved = y + (after - sigma) * 0.5 * (slope + (moved - denoise(moved, after)) / after)
        y = moved
    return y


def ddpm_forecast(predict, x: Tensor, alpha_bar: Tensor, steps: int, generator: torch.Generator | None) -> Tensor:
    """The next state given x by DDPM's ancestral sampler: y_K ~ N(0, I), then ``steps`` strided draws from
    ``q(y_{s'} | y_s, ŷ_0)`` down to level 0, ε̂ = ``predict(y_s, s)``; x: (batch, C, n, n) normalized."""
    levels = len(alpha_bar) - 1
    y = torch.randn(x.shape, generator=generator, device=x.device)
    ladder = level_ladder(torch.full((x.shape[0],), levels, device=x.device), min(steps, levels))
    for now, after in zip(ladder[:-1], ladder[1:]):
        noise = torch.randn(x.shape, generator=generator, device=x.device)
        y = ddpm_step(y, predict(y, now), alpha_bar[now], alpha_bar[after], noise)
    return y


def si_interpolant(x: Tensor, y: Tensor, z: Tensor, t: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
    """``I_t = (1 − t)x + t y + σ(1 − t)√t z`` and the reference target ``(y − x) − σ√t z``; t: (batch,)."""
    tb = per_sample(t, x)
    return (1 - tb) * x + tb * y + sigma * (1 - tb) * tb.sqrt() * z, (y - x) - sigma * tb.sqrt() * z


def unrolled_mse(net: torch.nn.Module, window: Tensor) -> Tensor:
    """Mean over k of ``|û_k − u_k|²`` with ``û_{k+1} = û_k + F_θ(û_k)`` from ``û_0 = u_0``;
    window: (batch, K + 1, C, n, n)."""
    state, losses = window[:, 0], []
    zero_t = torch.zeros(window.shape[0], device=window.device)
    for k in range(1, window.shape[1]):
        state = state + net(state, zero_t).float()
        losses.append(torch.mean((state - window[:, k]) ** 2))
    return torch.stack(losses).mean()


def si_sde_drift(b: Tensor, y: Tensor, x: Tensor, t: float, eps: float) -> Tensor:
    """``b + ½(g² − σ_t²) s`` with g = ε σ_t and ``σ_t² s = (1 − t)(t b − (y − x))/t`` (= (1 − t) b at t = 0, y = x)."""
    if eps == 1.0:
        return b
    score_term = (1 - t) * (b - (y - x) / t) if t > 0 else b
    return b + 0.5 * (eps**2 - 1) * score_term


class Forecaster:
    """A trained emulator as a map ``u_n → u_{n+lead}`` in physical units, batched: states (batch, n, n) of one
    field, or (batch, C, n, n) of the C ``variables`` it was trained on, each with its own ``mean`` and ``std``
    (then (C, 1, 1) tensors)."""

    def __init__(self, net: torch.nn.Module, kind: str, sigma: float, mean: float | Tensor, std: float | Tensor,
                 dt: float, n: int = 0, lead: int = 1, variables: tuple[str, ...] = (), levels: int = SNS_LEVELS):
        self.net, self.kind, self.sigma, self.mean, self.std, self.dt = net.eval(), kind, sigma, mean, std, dt
        self.n, self.lead, self.nfe, self.variables = n, lead, 0, tuple(variables)
        self.alpha_bar = cosine_alpha_bar(levels).float().to(self.device)  # a DDPM's ᾱ_s, s = 0…K
        self.channels = max(1, len(self.variables))
        self.fast: dict[tuple[str, bool], torch.nn.Module] = {}  # the network as each sampler runs it

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def _runner(self, sampler: ForecastSamplerConfig) -> torch.nn.Module:
        """The network (SNS: its denoiser) under the sampler's precision (``Accelerated``), compiled once when it
        asks."""
        key = (sampler.precision, sampler.compile)
        if key not in self.fast:
            net = self.net.denoiser if self.kind == "sns" else self.net
            self.fast[key] = accelerate(net, self.device, sampler.precision, sampler.compile)
        return self.fast[key]

    def self_refiner(self, sampler: ForecastSamplerConfig, generator: torch.Generator | None = None,
                     steps: int | None = None, renoise: float = 0.0) -> SelfRefiner:
        """An SNS model's inference (``engine.sns.SelfRefiner``) in physical units, its denoiser run as the sampler
        asks; ``steps`` caps a refinement's reverse steps per frame; the current frame is renoised to at least the
        noise fraction ``renoise`` (0: the paper's estimate alone)."""
        if self.kind != "sns":
            raise EngineError(f"a '{self.kind}' model is not an SNS pair denoiser (train one with --task sns)")
        runner = self._runner(sampler)

        def denoise(pair: Tensor, levels: Tensor) -> Tensor:
            return runner(frames_as_channels(pair), self.net.times(levels)).view_as(pair)

        return SelfRefiner(denoise, self.net.estimate_levels, self.net.alpha_bar, mean=self.mean, std=self.std,
                           steps=steps, min_level=level_of_noise_fraction(self.net.alpha_bar, renoise),
                           generator=generator, device=self.device)

    def _net(self, inputs: Tensor, t: float, sampler: ForecastSamplerConfig) -> Tensor:
        self.nfe += 1
        times = torch.full((inputs.shape[0],), float(t), device=inputs.device)
        return self._runner(sampler)(inputs, times)

    @torch.no_grad()
    def step(self, u: Tensor, sampler: ForecastSamplerConfig, generator: torch.Generator | None = None) -> Tensor:
        """One forecast of every state in the batch with the sampler's method, steps and ε (in u's shape)."""
        return self._forecast(u.reshape(u.shape[0], self.channels, *u.shape[-2:]), sampler, generator).reshape(u.shape)

    def _forecast(self, u: Tensor, sampler: ForecastSamplerConfig, generator: torch.Generator | None) -> Tensor:
        """``step`` on states (batch, C, n, n)."""
        if self.kind == "sns":  # the next state from pure noise given u: sampler.steps strided DDPM steps
            sns = self.self_refiner(sampler, generator)
            forecast = sns.forecast(u, sampler.steps)
            self.nfe += sns.nfe
            return forecast
        x = (u.float() - self.mean) / self.std
        if self.kind in RESIDUAL_TASKS:
            return (x + self._net(x, 0.0, sampler)) * self.std + self.mean
        if self.kind == "ddpm":
            def predict(y: Tensor, level: Tensor) -> Tensor:
                self.nfe += 1
                return self._runner(sampler)(torch.cat([x, y], 1), level.float() / (len(self.alpha_bar) - 1)).float()

            return ddpm_forecast(predict, x, self.alpha_bar, sampler.steps, generator) * self.std + self.mean
        if self.kind == "diffusion":
            def denoise(y: Tensor, sigma: float) -> Tensor:
                self.nfe += 1
                levels = torch.full((x.shape[0],), sigma, device=x.device)
                return edm_denoise(self._runner(sampler), x, y, levels)

            noise = torch.randn(x.shape, generator=generator, device=x.device)
            return edm_heun(denoise, noise, sampler.steps) * self.std + self.mean
        ts = torch.linspace(0.0, 1.0, sampler.steps + 1).tolist()
        y = x.clone() if self.kind == "forecast" else torch.randn(x.shape, generator=generator, device=x.device)
        eps = 0.0 if sampler.method == "pf_ode" else sampler.eps
        for t, t_next in zip(ts[:-1], ts[1:]):
            h = t_next - t
            b = self._net(torch.cat([x, y], 1), t, sampler)
            if self.kind != "forecast":  # the Gaussian-noise baseline integrates its flow ODE
                y = y + h * b
            elif sampler.method == "si_e":
                y = y + h * b
            else:
                y = y + h * si_sde_drift(b, y, x, t, eps)
                if eps > 0:
                    white = torch.randn(y.shape, generator=generator, device=y.device)
                    y = y + eps * self.sigma * (1 - t) * h**0.5 * white
        return y * self.std + self.mean


def load_forecaster(path: str | Path, device: torch.device | str = "cpu") -> Forecaster:
    """A forecaster from a checkpoint of a forecast, noise_baseline, diffusion, ddpm, pointwise, fno or sns run (EMA
    weights)."""
    state = load_checkpoint(path, device)
    kind = state.get("task", "generate")
    if kind not in FORECAST_TASKS:
        raise EngineError(f"{path} holds a '{kind}' model, not a forecaster; train one with --task "
                          f"{', '.join(FORECAST_TASKS)}")
    configs, data = state["configs"], state["data"]
    variables = trained_variables(data) or ()
    levels = configs["forecast"].get("levels", SNS_LEVELS)
    net = forecast_network(kind, configs["model"]["size"], levels, channels=len(variables)).to(device)
    net.load_state_dict(state["ema_state"])
    forecast = configs["forecast"]
    return Forecaster(net, kind, forecast["sigma"], per_channel(data["mean"], device), per_channel(data["std"], device),
                      data["dt"], data["n"], forecast["lead"], variables, levels)
