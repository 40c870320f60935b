"""Rollout and sampler diagnostics (docs/science.md §2 and §5), as pure functions over tensors.

Shapes: a rollout is ``(member, time, n, n)``; a truth is the same or broadcastable to it. Spectra follow
``engine.spectral`` (forward-normalized modes, shells with edges 0.5 … N/2 + 0.5).
"""
from __future__ import annotations

import torch

from engine.errors import EngineError
from engine.interpolants import interpolate
from engine.spectral import band_masks, energy_spectra, held_shells, shell_spectra

Tensor = torch.Tensor
TINY = 1e-6  # the references' regularizer in VRMSE and sRMSE, for fields of unit variance (rollout.evaluate)


def vrmse(prediction: Tensor, truth: Tensor) -> Tensor:
    """``sqrt(mean_xy (u − v)² / (var_xy(u) + 10⁻⁶))`` per field, averaged over members: (..., time, n, n) → (time,).

    u is the truth, v the prediction (paper 001's ``common/loss.py``).
    """
    squared = ((truth - prediction) ** 2).mean(dim=(-2, -1))
    variance = truth.var(dim=(-2, -1), unbiased=False)
    per_field = torch.sqrt(squared / (variance + TINY))
    return per_field.reshape(-1, per_field.shape[-1]).mean(0)


def line_spectra(x: Tensor) -> Tensor:
    """Power spectrum of every periodic 1-D signal, ±k summed: (..., n) → (..., N/2 + 1), float64 (Lorenz-96)."""
    xh = torch.fft.fft(x.to(torch.float64), norm="forward")
    power = xh.real**2 + xh.imag**2
    n = x.shape[-1]
    k = torch.fft.fftfreq(n, 1 / n, device=x.device).abs().round().long()
    return torch.zeros(*power.shape[:-1], n // 2 + 1, dtype=torch.float64, device=x.device).index_add_(-1, k, power)


def spectra(x: Tensor, ndim: int) -> Tensor:
    """``shell_spectra`` of 2-D fields or ``line_spectra`` of 1-D signals."""
    return shell_spectra(x) if ndim == 2 else line_spectra(x)


def band_spectral_rmse(prediction: Tensor, truth: Tensor) -> dict[str, Tensor]:
    """Paper 001's ``sRMSE = sqrt(mean_bins (1 − (P_true + ε)/(P_pred + ε))²)`` per band, member-averaged spectra,
    over the shells the truth holds (``held_shells``: a dealiased solver's empty shells past N/3 are skipped).

    prediction, truth: (member, time, n, n) (or (time, n, n)) → {band: (time,)}.
    """
    p_pred = shell_spectra(prediction).reshape(-1, *prediction.shape[-3:-2], prediction.shape[-1] // 2 + 1).mean(0)
    p_true = shell_spectra(truth).reshape(-1, *truth.shape[-3:-2], truth.shape[-1] // 2 + 1).mean(0)
    return band_errors_of_spectra(p_pred, p_true, truth.shape[-1])


def band_errors_of_spectra(p_pred: Tensor, p_true: Tensor, n: int) -> dict[str, Tensor]:
    """``band_spectral_rmse`` from the member-averaged shell spectra (..., N/2 + 1) of an n × n grid."""
    ratio = (1 - (p_true + TINY) / (p_pred + TINY)) ** 2
    held = held_shells(p_true.reshape(-1, p_true.shape[-1]).mean(0))
    masks = band_masks(n, p_true.device)
    return {band: torch.sqrt(ratio[..., mask & held].mean(-1)) for band, mask in masks.items()}


CORRELATION_FORMS = {"paper": "paper 004: per-pair normalized correlations, each snapshot's spatial mean removed",
                     "pooled": "covariance pooled over runs and times, the global mean removed"}


def correlation(fields: Tensor, max_lag: int, form: str = "paper") -> Tensor:
    """``C(τ)`` at r = 0 of fields (run, time, n, n) → (max_lag + 1,), C(0) = 1.

    ``paper`` (paper 004): ``mean_{run,t} ⟨X̃_t X̃_{t+τ}⟩ / (|X̃_t| |X̃_{t+τ}|)`` with X̃ = X − its spatial mean;
    ``pooled``: the mean-removed cross-spectrum ``X̂_t · conj(X̂_{t+τ})`` averaged over runs and t, inverse FFT at
    zero separation, divided by H·W·var.
    """
    if form not in CORRELATION_FORMS:
        raise EngineError(f"correlation form must be one of {', '.join(CORRELATION_FORMS)}, not {form!r}")
    if form == "paper":
        return paired_correlation(fields, max_lag)
    return pooled_correlation(fields, max_lag)


def paired_correlation(fields: Tensor, max_lag: int) -> Tensor:
    """Paper 004's C(τ): each pair (t, t + τ) correlated over space after removing each snapshot's mean."""
    lagged = sum(lagged_correlations(run, max_lag) for run in fields)
    return mean_over_starts(lagged, runs=fields.shape[0], max_lag=max_lag)


def lagged_correlations(fields: Tensor, max_lag: int) -> Tensor:
    """⟨X̃_t X̃_{t+τ}⟩ / (|X̃_t| |X̃_{t+τ}|) of one run for every start t and lag τ ≤ ``max_lag``, X̃ the field
    less its spatial mean: (time, n, n) → (time, max_lag + 1), 0 where t + τ is past the end. One run at a time
    keeps the float64 copies small."""
    x = fields.to(torch.float64).flatten(1)
    x = x - x.mean(dim=1, keepdim=True)
    x = x / x.norm(dim=1, keepdim=True).clamp(min=1e-300)
    length = x.shape[0]
    out = torch.zeros(length, max_lag + 1, dtype=torch.float64)
    for tau in range(min(max_lag, length - 1) + 1):
        out[: length - tau, tau] = (x[: length - tau] * x[tau:]).sum(dim=1)
    return out


def mean_over_starts(lagged: Tensor, *, runs: int, max_lag: int) -> Tensor:
    """C(τ) for τ ≤ ``max_lag`` from ``lagged_correlations`` summed over ``runs`` runs: the mean over runs and over
    the starts t whose t + τ is within the (time,) length."""
    length = lagged.shape[0]
    return torch.stack([lagged[: length - tau, tau].sum() / (runs * (length - tau)) for tau in range(max_lag + 1)])


def pooled_correlation(fields: Tensor, max_lag: int) -> Tensor:
    """C(τ) from the covariance pooled over runs and times (the global mean removed)."""
    x = fields.to(torch.float64)
    x = x - x.mean()
    xh = torch.fft.fft2(x)
    lags = []
    for tau in range(max_lag + 1):
        cross = (xh[:, : x.shape[1] - tau] * xh[:, tau:].conj()).mean(dim=(0, 1))
        lags.append(torch.fft.ifft2(cross).real[0, 0])
    n_pixels = x.shape[-1] * x.shape[-2]
    return torch.stack(lags) / (n_pixels * x.var(unbiased=False))


def rate_of_change(fields: Tensor, dt: float) -> Tensor:
    """``R(t) = ‖(x_{t+1} − x_t)/Δt‖₁`` as a mean over pixels and members: (member, time, n, n) → (time − 1,)."""
    rate = (fields[:, 1:] - fields[:, :-1]).abs().mean(dim=(-2, -1)) / dt
    return rate.mean(0)


def energy_and_enstrophy(vorticity: Tensor) -> tuple[Tensor, Tensor]:
    """Domain means ``½⟨|u|²⟩`` and ``½⟨ω²⟩`` per field: (..., n, n) → (...), (...)."""
    energy = energy_spectra(vorticity).sum(-1)
    enstrophy = 0.5 * (vorticity.to(torch.float64) ** 2).mean(dim=(-2, -1))
    return energy, enstrophy


def wasserstein_1d(a: Tensor, b: Tensor, quantiles: int = 512) -> Tensor:
    """W₁ between the value distributions of a and b (any shapes), from ``quantiles`` matched quantiles."""
    q = (torch.arange(quantiles, device=a.device, dtype=torch.float64) + 0.5) / quantiles
    qa = torch.quantile(_subsample(a.flatten().to(torch.float64)), q)
    qb = torch.quantile(_subsample(b.flatten().to(torch.float64)), q)
    return (qa - qb).abs().mean()


def crps(ensemble: Tensor, truth: Tensor) -> Tensor:
    """Fair ensemble CRPS per lead, averaged over initial conditions and grid points (paper 001's calibration
    score): ``mean_i |X_i − y| − Σ_ij |X_i − X_j| / (2 m (m − 1))``.

    ensemble: (ic, m, time, n, n); truth: (ic, time, n, n) → (time,). With m = 1 it is the MAE.
    """
    ensemble, truth = ensemble.double(), truth.double()
    m = ensemble.shape[1]
    skill = (ensemble - truth[:, None]).abs().mean(1)
    if m == 1:
        return skill.mean(dim=(0, -2, -1))
    spread = torch.zeros_like(skill)
    for i in range(m):  # Σ_ij |X_i − X_j| without an (m × m × field) tensor
        spread += (ensemble - ensemble[:, i: i + 1]).abs().sum(1)
    return (skill - spread / (2 * m * (m - 1))).mean(dim=(0, -2, -1))


def spread_skill(ensemble: Tensor, truth: Tensor) -> Tensor:
    """Spread–skill ratio per lead: ``sqrt((m + 1)/m · mean var_i X_i) / RMSE(mean_i X_i, y)``, 1 for a
    calibrated ensemble (below 1: overconfident). ensemble: (ic, m, time, n, n); truth: (ic, time, n, n)."""
    m = ensemble.shape[1]
    if m < 2:
        return torch.full((ensemble.shape[2],), float("nan"), dtype=torch.float64)
    return spread_skill_ratio(*spread_and_skill(ensemble, truth), members=m)


def spread_and_skill(ensemble: Tensor, truth: Tensor) -> tuple[Tensor, Tensor]:
    """Per lead, ``mean var_i X_i`` (unbiased) and ``mean (mean_i X_i − y)²`` over initial conditions and grid
    points: the two halves of ``spread_skill``. ensemble: (ic, m ≥ 2, time, n, n); truth: (ic, time, n, n)."""
    ensemble, truth = ensemble.double(), truth.double()
    return (ensemble.var(dim=1, unbiased=True).mean(dim=(0, -2, -1)),
            (ensemble.mean(1) - truth).pow(2).mean(dim=(0, -2, -1)))


def spread_skill_ratio(spread: Tensor, skill: Tensor, *, members: int) -> Tensor:
    """``sqrt((m + 1)/m · spread / skill)`` from ``spread_and_skill``."""
    return (spread * (members + 1) / members / skill.clamp(min=1e-300)).sqrt()


def sliced_wasserstein(a: Tensor, b: Tensor, *, projections: int = 128, seed: int = 0) -> Tensor:
    """Sliced W₁ between two sample sets (N, D) and (M, D): the mean over random unit directions θ of the W₁
    between the projections a θ and b θ (from matched quantiles)."""
    theta = sliced_directions(a.shape[1], projections=projections, seed=seed, device=a.device)
    return projected_w1(a.double() @ theta, b.double() @ theta)


def sliced_directions(dimension: int, *, projections: int = 128, seed: int = 0,
                      device: torch.device | str = "cpu") -> Tensor:
    """The sliced W₁'s random unit directions θ: (dimension, projections), float64, seeded."""
    generator = torch.Generator(device=device).manual_seed(seed)
    theta = torch.randn(dimension, projections, generator=generator, device=device, dtype=torch.float64)
    return theta / theta.norm(dim=0, keepdim=True)


def projected_w1(pa: Tensor, pb: Tensor) -> Tensor:
    """The mean over directions of the W₁ between two sample sets already projected, (N, P) and (M, P), from
    min(N, M, 512) matched quantiles."""
    count = min(pa.shape[0], pb.shape[0], 512)
    q = (torch.arange(count, device=pa.device, dtype=torch.float64) + 0.5) / count
    return (torch.quantile(pa, q, dim=0) - torch.quantile(pb, q, dim=0)).abs().mean()


def transition_distance(emulated: Tensor, truth: Tensor, **kwargs) -> Tensor:
    """Sliced W₁ between the distributions of consecutive-state pairs (u_k, u_{k+1}) of an emulated ensemble
    (member, time, n, n) and of the truth (trajectory, time, n, n), pooled over members and times."""
    def pairs(x: Tensor) -> Tensor:
        return torch.cat([x[:, :-1], x[:, 1:]], dim=-1).flatten(2).flatten(0, 1)

    return sliced_wasserstein(pairs(emulated), pairs(truth), **kwargs)


def _subsample(values: Tensor, limit: int = 1 << 22) -> Tensor:
    """torch.quantile refuses more than 2^24 values: take an even stride through larger sets."""
    return values[:: -(-values.numel() // limit)] if values.numel() > limit else values


def drift_norms(drift, x0: Tensor, x1: Tensor, schedule, ts: Tensor) -> Tensor:
    """RMS drift per pixel ``sqrt(E|b(t, x_t)|²)`` along the interpolant between x0 and x1 at each t: → (len(ts),)."""
    norms = []
    for t in ts:
        c = schedule(t)
        b = drift(t, interpolate(c, x0, x1))
        norms.append(b.to(torch.float64).pow(2).mean().sqrt())
    return torch.stack(norms)
