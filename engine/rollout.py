"""Autoregressive ensemble rollouts, their refinement toward the data distribution, and their diagnostics.

``rollout(step, initial, config)`` applies any one-step map (a trained ``Forecaster`` with its sampler, or a
closure) to an ensemble, keeps every ``save_every``-th state and the member-mean power spectrum of *every*
step, and stops at the first NaN or blow-up (max|u| above ``blowup`` data std), reporting the step and keeping
what was computed. The blow-up check syncs with the host once every ``CHECK_EVERY`` steps, not per step.

Refinement (paper 004, Thermalizer variant): a generative model of the stationary distribution (white noise,
any schedule) pulls drifting states back. Each state's noise level is estimated from its spectrum: the
interpolant's spectrum at time t is ``α(t)² S_n + β(t)² S_d``, and t* minimizes the mean |log| mismatch with
the state's shell spectrum on the fine half of the shells (where drift shows first). States whose noise
fraction α(t*)² exceeds ``start`` are integrated by the probability-flow ODE from t* to 1. This spectral
estimate replaces the paper's learned noise-level classifier: no extra network, exact for Gaussian data.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import xarray as xr

from engine.config import RolloutConfig, options
from engine.data.store import provenance
from engine.diagnostics import shell_spectra
from engine.errors import EngineError
from engine.noise import sample_noise
from engine.spectral import shell_sum

Tensor = torch.Tensor
CHECK_EVERY = 16  # steps between host syncs for the NaN / blow-up check
PREVIEW_SECONDS = 1 / 30  # least time between progress events (each carries a preview field and spectrum): 30 fps
LEVEL_GRID = 400  # candidate times t* in [0, 1) for the noise-level estimate


@dataclass
class Rollout:
    """States ``(member, saved, n, n)`` (physical units, CPU), the saved step indices, the member-mean power
    spectrum of every step ``(step, N/2 + 1)``, and where and why it stopped early (None when it did not)."""

    states: Tensor
    saved_steps: list[int]
    spectra: Tensor
    steps_done: int
    blowup_step: int | None = None
    reason: str | None = None
    seconds: float = 0.0
    refined: list[int] = field(default_factory=list)


class Refiner:
    """Thermalizer-style refinement with a generative drift ``b(t, x)`` (physical units, per-sample t allowed).

    ``renoise`` > 0 adds the SNS-style forward step for states that look cleaner than that noise fraction
    (over-smoothed ones included): ``x_t = α(t) z + β(t) x`` at the level where α² = renoise, then denoise.
    """

    def __init__(self, drift, schedule, noise_power: Tensor, data_power: Tensor, steps: int = 8, start: float = 1e-3,
                 renoise: float = 0.0, seed: int = 0):
        self.drift, self.schedule, self.steps, self.start, self.renoise = drift, schedule, steps, start, renoise
        self.noise_power, self.generator = noise_power, torch.Generator(noise_power.device).manual_seed(seed)
        self.noise_shells, self.data_shells = shell_sum(noise_power.cpu()), shell_sum(data_power.cpu())
        n = noise_power.shape[-1]
        self.fine = torch.arange(n // 2 + 1) >= max(1, n // 4)  # the fine half of the shells
        self.ts = torch.linspace(0.0, 1.0, LEVEL_GRID + 1, dtype=torch.float64)[:-1]
        c = schedule(self.ts)
        model = c.alpha[:, None] ** 2 * self.noise_shells[None] + c.beta[:, None] ** 2 * self.data_shells[None]
        self.log_model = torch.log(model[:, self.fine].clamp(min=1e-300))  # (levels, fine shells)

    def noise_level(self, x: Tensor) -> Tensor:
        """Estimated interpolant time t* of each state: (batch, n, n) → (batch,) float64."""
        measured = torch.log(shell_spectra(x.cpu())[:, self.fine].clamp(min=1e-300))  # (batch, fine shells)
        mismatch = (measured[:, None, :] - self.log_model[None]).abs().mean(-1)  # (batch, levels)
        return self.ts[mismatch.argmin(1)]

    def _renoised(self, x: Tensor, t_star: Tensor) -> tuple[Tensor, Tensor]:
        """States cleaner than ``renoise`` moved forward to that level: (states, their levels)."""
        fractions = self.schedule(self.ts).alpha ** 2
        level = self.ts[fractions >= self.renoise].max()  # the latest time with at least that much noise
        clean = (t_star > level).to(x.device)
        if not bool(clean.any()):
            return x, t_star
        c = self.schedule(level)
        z = sample_noise(self.noise_power, int(clean.sum()), self.generator).to(x.device, x.dtype)
        x = x.clone()
        x[clean] = float(c.alpha) * z + float(c.beta) * x[clean]
        return x, torch.where(clean.cpu(), level, t_star)

    @torch.no_grad()
    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Refined states and a (batch,) bool mask of those that were refined."""
        t_star = self.noise_level(x)
        if self.renoise > 0:
            x, t_star = self._renoised(x, t_star)
        noisy = self.schedule(t_star).alpha ** 2 > self.start
        if not bool(noisy.any()):
            return x, noisy
        t = t_star[noisy].to(x.device)
        y, h = x[noisy.to(x.device)].to(torch.float64), (1 - t) / self.steps
        for i in range(self.steps):
            y = y + h[:, None, None] * self.drift(t + i * h, y.to(x.dtype)).to(torch.float64)
        out = x.clone()
        out[noisy.to(x.device)] = y.to(x.dtype)
        return out, noisy


def _check(x: Tensor, limit: float) -> Tensor:
    """Per-member bool: NaN/inf anywhere or max|x| above the limit (stays on the device)."""
    return ~torch.isfinite(x).all(dim=(-2, -1)) | (x.abs().amax(dim=(-2, -1)) > limit)


def _first_bad(flags: list[Tensor], last_step: int) -> int | None:
    """The first step whose flag is set, given the flags of the steps up to ``last_step``."""
    bad = torch.stack(flags)
    return last_step - len(flags) + 1 + int(torch.nonzero(bad)[0]) if bool(bad.any()) else None


def rollout(step: Callable[[Tensor], Tensor], initial: Tensor, config: RolloutConfig, data_std: float,
            refiner: Refiner | None = None, callback: Callable[[dict], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> Rollout:
    """Advance ``initial`` (member, n, n) by ``config.steps`` applications of ``step``; see the module doc."""
    limit = config.blowup * data_std
    x, start = initial, time.perf_counter()
    saved, saved_steps, spectra, flags, refined = [x.float().cpu()], [0], [shell_spectra(x).mean(0)], [], []
    done, blowup, reason, last_event = 0, None, None, 0.0
    for k in range(1, config.steps + 1):
        x = step(x)
        if refiner is not None and config.refine_every and k % config.refine_every == 0:
            x, mask = refiner(x)
            if bool(mask.any()):
                refined.append(k)
        flags.append(_check(x, limit).any())
        spectra.append(shell_spectra(x).mean(0))
        done = k
        if k % config.save_every == 0:
            saved.append(x.float().cpu())
            saved_steps.append(k)
        stop = should_stop is not None and should_stop()  # a host-side flag: no device sync
        if k % CHECK_EVERY == 0 or k == config.steps or stop:
            blowup = _first_bad(flags, k)  # one host sync per CHECK_EVERY steps
            if blowup is not None:
                reason = "NaN or infinite values" if not torch.isfinite(x).all() else f"max|u| above {config.blowup} data std"
                break
            flags = []
        if callback is not None and (time.perf_counter() - last_event >= PREVIEW_SECONDS or k == config.steps):
            callback({"kind": "progress", "step": k, "steps": config.steps, "preview": x[0].float().cpu(),
                      "spectrum": spectra[-1].cpu()})  # the one host sync a preview needs, at most 10 per second
            last_event = time.perf_counter()
        if stop:
            reason = "stopped"
            break
    if blowup is not None:  # keep what was computed up to the last good step
        keep = [i for i, s in enumerate(saved_steps) if s < blowup]
        saved, saved_steps, spectra = [saved[i] for i in keep], [saved_steps[i] for i in keep], spectra[:blowup]
        done = blowup - 1
    return Rollout(torch.stack(saved, 1), saved_steps, torch.stack(spectra).cpu(), done, blowup, reason,
                   time.perf_counter() - start, refined)


def initial_conditions(trajectories: Tensor, config: RolloutConfig) -> Tensor:
    """The ensemble's start: ``config.members`` copies of each of the first ``initial_conditions`` trajectories
    at time index ``start``. trajectories: (trajectory, time, n, n) physical units → (ic × members, n, n)."""
    count, length = trajectories.shape[:2]
    if config.initial_conditions > count:
        raise EngineError(f"{config.initial_conditions} initial conditions asked for; the test data has {count} trajectories")
    if config.start >= length:
        raise EngineError(f"start index {config.start} is past the {length} snapshots of the test data")
    return trajectories[: config.initial_conditions, config.start].repeat_interleave(config.members, 0)


def rollout_dataset(result: Rollout, dt: float, variable: str, config: RolloutConfig, truth: Tensor | None = None,
                    **attrs) -> xr.Dataset:
    """``{variable}(member, time, y, x)`` plus ``spectrum(step, wavenumber)`` with provenance attrs, and with
    ``truth`` ((trajectory, time, n, n), see ``truth_frames``) ``{variable}_truth(trajectory, time, y, x)``."""
    n = result.states.shape[-1]
    coord = np.arange(n) * (2 * math.pi / n)
    members = result.states.shape[0]
    variables = {variable: (("member", "time", "y", "x"), result.states.numpy(), {"long_name": f"emulated {variable}"}),
                 "spectrum": (("step", "wavenumber"), result.spectra.numpy(),
                              {"long_name": "member-mean shell-summed power spectrum at every step"})}
    if truth is not None:
        variables[f"{variable}_truth"] = (("trajectory", "time", "y", "x"), truth.float().numpy(),
                                          {"long_name": f"{variable} of the test data at the same times (NaN past its end); "
                                                        "member m started from trajectory initial_condition[m]"})
    return xr.Dataset(
        variables,
        coords={"member": np.arange(members), "initial_condition": ("member", np.arange(members) // config.members),
                "time": ("time", np.asarray(result.saved_steps) * dt, {"units": "model time"}),
                "step": np.arange(result.spectra.shape[0]), "wavenumber": np.arange(n // 2 + 1),
                "y": coord, "x": coord},
        attrs=provenance("engine.rollout", **options(config), steps_done=result.steps_done,
                         blowup_step=result.blowup_step, stop_reason=result.reason, seconds=result.seconds,
                         refined_steps=len(result.refined), **attrs))


def truth_frames(trajectories: Tensor, saved_steps: list[int], config: RolloutConfig, lead: int) -> Tensor:
    """The test data at the rollout's saved steps, per initial condition: (ic, saved, n, n), NaN past its end."""
    length = trajectories.shape[1]
    out = torch.full((config.initial_conditions, len(saved_steps), *trajectories.shape[2:]), float("nan"))
    for column, step in enumerate(saved_steps):
        index = config.start + step * lead
        if index < length:
            out[:, column] = trajectories[: config.initial_conditions, index].cpu()
    return out


def evaluate(result: Rollout, trajectories: Tensor, config: RolloutConfig, lead: int) -> dict:
    """VRMSE and band sRMSE per saved lead time against the truth where the test data reaches.

    trajectories: (trajectory, time, n, n) physical units, the ones the ensemble started from.
    """
    from engine.diagnostics import band_spectral_rmse, vrmse

    length = trajectories.shape[1]
    usable = [(i, s) for i, s in enumerate(result.saved_steps) if config.start + s * lead < length]
    if not usable:
        return {"lead_steps": [], "vrmse": [], "band_errors": {"low": [], "mid": [], "high": []}}
    columns, steps = [i for i, _ in usable], [s for _, s in usable]
    truth = trajectories[: config.initial_conditions, [config.start + s * lead for s in steps]]
    truth = truth.repeat_interleave(config.members, 0)  # (member, lead, n, n), aligned with the ensemble
    states = result.states[:, columns].to(truth.dtype)
    bands = band_spectral_rmse(states, truth)
    return {"lead_steps": steps, "vrmse": vrmse(states, truth).tolist(),
            "band_errors": {band: values.tolist() for band, values in bands.items()}}


def load_refiner(path, device: torch.device, steps: int = 8, start: float = 1e-3, renoise: float = 0.0) -> Refiner:
    """A refiner from a generative checkpoint trained on the stationary fields (``train --task refiner``)."""
    from engine.checkpoints import load_checkpoint
    from engine.config import NoiseConfig, ScheduleConfig
    from engine.data.store import FieldData
    from engine.generation import checkpoint_setup

    state = load_checkpoint(path, "cpu")
    if state.get("task", "generate") != "generate":
        raise EngineError(f"{path} holds a '{state['task']}' model; a refiner is a generative model (--task refiner)")
    trained, data = state["configs"], state["data"]
    fields = FieldData(torch.empty(0, data["n"], data["n"]), data["spectrum"], data["variable"], {})
    setup = checkpoint_setup(path, fields, NoiseConfig(**trained["noise"]), ScheduleConfig(**trained["schedule"]), device)
    return Refiner(setup.drift, setup.schedule, setup.noise_power.to(device), setup.data_power.to(device), steps, start,
                   renoise)


def statistics(result: Rollout, truth: Tensor, config: RolloutConfig, dt: float, lead: int, max_lag: int = 20) -> dict:
    """C(τ) and R(t) of the emulated ensemble and of the truth at the same saved times (science.md §5)."""
    from engine.diagnostics import correlation, rate_of_change

    frames = [config.start + s * lead for s in result.saved_steps if config.start + s * lead < truth.shape[1]]
    states, window = result.states.double(), truth[: config.initial_conditions, frames].double()
    lags = max(0, min(max_lag, len(frames) - 1, states.shape[1] - 1))
    out = {"correlation": {"emulator": correlation(states, lags).tolist(), "truth": correlation(window, lags).tolist()},
           "saved_time": [s * lead * dt for s in result.saved_steps]}
    if states.shape[1] > 1 and len(frames) > 1:
        step = dt * lead * config.save_every
        out["rate"] = {"emulator": rate_of_change(states, step).tolist(), "truth": rate_of_change(window, step).tolist()}
    return out


@dataclass
class Emulator:
    """A one-step map ``step(u)`` in physical units and the model that counts its network evaluations."""

    step: Callable[[Tensor], Tensor]
    model: object


def _emulator(store, checkpoint: str, trajectories, config: RolloutConfig, sampler, device) -> tuple[Emulator, Tensor, int]:
    """The checkpoint's one-step map, the truth it is judged against (physical units) and its lead.

    Forecasters step ``u_n → u_{n+lead}`` with the sampler; a PDD predictor simulates at ``config.lam`` (noise on
    unless the sampler is ``ode``/``drop_noise``), judged against the test data coarse-grained at that λ.
    """
    from engine.checkpoints import load_checkpoint
    from engine.forecast import check_time_step, load_forecaster

    path = store.path(checkpoint)
    task = load_checkpoint(path, "cpu").get("task")
    generator = torch.Generator(device=device).manual_seed(sampler.seed)
    truth = trajectories.denormalize(trajectories.fields)
    if task == "pdd":
        from engine.pdd import load_pdd

        model = load_pdd(path, device)
        if model.ndim != 2 or model.n != trajectories.n:
            raise EngineError(f"{checkpoint} was trained on {model.n}-point {model.ndim}-D data; the test data is {trajectories.n}²")
        check_time_step(model.dt, trajectories, checkpoint, store)
        coarse = model.coarse_grain(model.normalize(truth), config.lam, torch.Generator().manual_seed(sampler.seed))
        stepper = model.stepper(config.lam, noise=sampler.method == "sde", generator=generator)
        return Emulator(stepper, model), model.denormalize(coarse), 1
    if config.lam > 0:
        raise EngineError(f"λ = {config.lam}: only PDD predictors (train --task pdd) simulate coarse-grained fields")
    forecaster = load_forecaster(path, device)
    if forecaster.n != trajectories.n:
        raise EngineError(f"{checkpoint} was trained on {forecaster.n}² fields; the test data is {trajectories.n}²")
    check_time_step(forecaster.dt, trajectories, checkpoint, store)
    return Emulator(lambda x: forecaster.step(x, sampler, generator), forecaster), truth, forecaster.lead


def run_rollout(store, checkpoint: str, data: str, config: RolloutConfig, sampler, refiner: str | None = None,
                variable: str | None = None, out: str | None = None, callback=None, should_stop=None) -> tuple[Rollout, dict]:
    """Roll the emulator at ``checkpoint`` out from the trajectories ``data`` (names in the data folder ``store``).

    With a ``refiner`` and ``config.refine_every`` = 0 it refines every step. Returns the rollout and a JSON-ready
    summary: VRMSE and band errors per lead, C(τ), R(t), blow-up step, seconds, NFE (and ``out`` when written).
    """
    from engine.data.store import write_dataset
    from engine.forecast import load_trajectories
    from engine.training import resolve_device

    device = resolve_device(config.device)
    trajectories = load_trajectories(store.path(data), variable)
    emulator, truth, lead = _emulator(store, checkpoint, trajectories, config, sampler, device)
    refine = load_refiner(store.path(refiner), device, renoise=config.renoise) if refiner else None
    if refine is not None and config.refine_every == 0:
        config.refine_every = 1
    result = rollout(emulator.step, initial_conditions(truth, config).to(device), config, trajectories.std, refine,
                     callback, should_stop)
    summary = {**evaluate(result, truth, config, lead), **statistics(result, truth, config, trajectories.dt, lead),
               "blowup_step": result.blowup_step, "stop_reason": result.reason, "steps_done": result.steps_done,
               "seconds": round(result.seconds, 4), "nfe": emulator.model.nfe, "refined_steps": len(result.refined),
               "out": out}
    if out:
        write_dataset(rollout_dataset(result, trajectories.dt * lead, trajectories.variable, config,
                                      truth_frames(truth, result.saved_steps, config, lead), checkpoint=str(checkpoint),
                                      **{f"sampler_{k}": v for k, v in options(sampler).items()}), store.path(out))
    return result, summary
