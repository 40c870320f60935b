import math

import pytest
import torch

from engine.diagnostics import (
    band_spectral_rmse,
    correlation,
    crps,
    drift_norms,
    energy_and_enstrophy,
    energy_spectra,
    rate_of_change,
    shell_spectra,
    spread_skill,
    transition_distance,
    vrmse,
    wasserstein_1d,
)
from engine.errors import EngineError
from engine.interpolants import GaussianModel
from engine.noise import sample_noise
from engine.oracle import expected_drift_norm
from engine.schedules import make_schedule

N = 32


def _grid(n=N):
    x = torch.arange(n, dtype=torch.float64) * 2 * math.pi / n
    return torch.meshgrid(x, x, indexing="ij")  # (y, x)


def test_vrmse_of_known_errors():
    y, x = _grid()
    truth = torch.sin(3 * x)[None, None].expand(2, 4, N, N)  # variance ½
    assert torch.allclose(vrmse(truth, truth), torch.zeros(4, dtype=torch.float64), atol=1e-12)
    shifted = truth + 0.5  # mean squared error ¼ → sqrt(¼ / ½)
    assert torch.allclose(vrmse(shifted, truth), torch.full((4,), math.sqrt(0.5), dtype=torch.float64), rtol=1e-5)
    # persistence of 0
    assert torch.allclose(vrmse(torch.zeros_like(truth), truth), torch.ones(4, dtype=torch.float64), rtol=1e-5)


def test_spectra_of_single_fourier_modes():
    y, x = _grid()
    field = 2 * torch.cos(3 * x + 4 * y)  # modes (±4, ±3) each of amplitude 1: |k| = 5
    s = shell_spectra(field)
    assert s.shape == (N // 2 + 1,) and s[5].item() == pytest.approx(2.0) and s.sum().item() == pytest.approx(2.0)
    # vorticity ω = 2 cos(...) has velocity energy ½⟨|u|²⟩ = ⟨ω²⟩/(2|k|²) = 2/(2·25)
    e = energy_spectra(field)
    assert e[5].item() == pytest.approx(2 / (2 * 25)) and e.sum().item() == pytest.approx(1 / 25)
    energy, enstrophy = energy_and_enstrophy(field)
    assert energy.item() == pytest.approx(1 / 25) and enstrophy.item() == pytest.approx(1.0)
    # sRMSE: a prediction with twice the power in the high band only
    fine = torch.cos(12 * x)
    errors = band_spectral_rmse((field + math.sqrt(2) * fine)[None, None], (field + fine)[None, None])
    # only the shells the truth holds count (k = 5 in the mid band, k = 12 in the high one; the low band holds none)
    assert math.isnan(errors["low"].item()) and errors["mid"].item() == pytest.approx(0.0, abs=1e-9)
    # the high band's one held shell (k = 12) has 1 − P/2P = ½
    assert errors["high"].item() == pytest.approx(0.5, rel=1e-3)


def test_correlation_of_a_pure_translation_is_the_cosine_of_the_shift():
    y, x = _grid()
    k, shift = 2, 2 * math.pi / N  # a sin(2x) pattern moving one pixel per step
    fields = torch.stack([torch.sin(k * (x - t * shift)) for t in range(40)])[None]
    expected = torch.cos(k * shift * torch.arange(9, dtype=torch.float64))
    for form in ("paper", "pooled"):
        assert torch.allclose(correlation(fields, max_lag=8, form=form), expected, atol=1e-10)


def test_paper_correlation_ignores_a_changing_amplitude_and_spatial_mean_the_pooled_one_does_not():
    """X_t = m_t + a_t cos x: each snapshot has the same pattern, so paper 004's per-pair form is 1 at every lag
    (to 1e-12), while the pooled covariance is pulled below 1 by the varying a_t and m_t."""
    y, x = _grid()
    t = torch.arange(30, dtype=torch.float64)
    amplitude, mean = 1 + 0.5 * torch.sin(0.7 * t), 2 * torch.cos(0.3 * t)
    fields = (mean[:, None, None] + amplitude[:, None, None] * torch.cos(x))[None]
    assert torch.allclose(correlation(fields, max_lag=6), torch.ones(7, dtype=torch.float64), atol=1e-12)
    pooled = correlation(fields, max_lag=6, form="pooled")
    assert float(pooled[1]) < 0.95 and float(pooled[6]) < 0.2
    with pytest.raises(EngineError, match="correlation form"):
        correlation(fields, max_lag=2, form="other")


def test_rate_of_change_of_a_linear_ramp():
    y, x = _grid()
    f = torch.sin(x) * torch.cos(2 * y)
    fields = torch.stack([0.3 * t * f for t in range(6)])[None]
    r = rate_of_change(fields, dt=0.5)
    assert torch.allclose(r, torch.full((5,), 0.3 * f.abs().mean().item() / 0.5, dtype=torch.float64), rtol=1e-10)


def test_wasserstein_between_shifted_gaussians():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200_000, generator=g, dtype=torch.float64)
    b = torch.randn(200_000, generator=g, dtype=torch.float64) + 0.7
    assert wasserstein_1d(a, b).item() == pytest.approx(0.7, abs=0.02)
    assert wasserstein_1d(a, a).item() == 0


def test_measured_drift_norm_matches_the_exact_gaussian_one():
    power = torch.zeros(N, N, dtype=torch.float64)
    ky, kx = torch.meshgrid(torch.fft.fftfreq(N, 1 / N), torch.fft.fftfreq(N, 1 / N), indexing="ij")
    power = (1 + kx**2 + ky**2) ** -2.0
    power[0, 0] = 0
    power = power / power.sum()
    white = torch.full((N, N), 1.0 / (N * N - 1), dtype=torch.float64)
    white[0, 0] = 0
    model = GaussianModel(white, power, make_schedule("linear", dimension=N * N))
    g = torch.Generator().manual_seed(1)
    x0, x1 = sample_noise(white, 2000, g), sample_noise(power, 2000, g)
    ts = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    measured = drift_norms(model, x0, x1, model.schedule, ts)
    assert torch.allclose(measured, expected_drift_norm(model, ts), rtol=0.03)


def test_band_srmse_of_the_truth_plus_one_percent_noise_is_below_0_02_in_every_band_on_dealiased_data():
    """The shipped 64² flow leaves shells 31 and 32 empty; they are skipped, so 1% white noise on the truth costs
    < 0.02 in the high band (0.30 when the empty shells counted)."""
    from engine.data.sequences import load_trajectories
    from engine.data.store import ASSETS

    data = load_trajectories(ASSETS / "kolmogorov-64-test.nc")
    truth = data.denormalize(data.fields)[:2, :10]
    noise = torch.randn(truth.shape, generator=torch.Generator().manual_seed(0), dtype=truth.dtype)
    errors = band_spectral_rmse(truth + 0.01 * truth.std() * noise, truth)
    assert all(float(errors[band].max()) < 0.02 for band in ("low", "mid", "high")), errors


def _gaussian_abs_mean(mean: float, variance: float) -> float:
    """E|Z| for Z ~ N(mean, variance)."""
    s = math.sqrt(variance)
    return s * math.sqrt(2 / math.pi) * math.exp(-mean**2 / (2 * variance)) + mean * math.erf(mean / (s * math.sqrt(2)))


@pytest.mark.parametrize("bias", [0.0, 1.0])
def test_ensemble_crps_matches_the_gaussian_closed_form(bias):
    """Truth y ~ N(0, 1), m = 16 members X ~ N(b, 1) at 64² independent points: E[CRPS] = E|X − y| − E|X − X'|/2
    = E|N(b, 2)| − 1/√π (1/√π ≈ 0.564 for the perfect ensemble), within 2%."""
    generator = torch.Generator().manual_seed(0)
    truth = torch.randn(2, 1, 64, 64, generator=generator)
    ensemble = bias + torch.randn(2, 16, 1, 64, 64, generator=generator)
    expected = _gaussian_abs_mean(bias, 2.0) - 1 / math.sqrt(math.pi)
    assert float(crps(ensemble, truth)[0]) == pytest.approx(expected, rel=0.02)


def test_spread_skill_is_one_for_a_calibrated_ensemble_and_half_for_one_half_as_wide():
    """A perfect ensemble: 1; members of half the truth's spread around the same mean: sqrt(¼(m+1)/m / (1 + ¼/m))."""
    generator = torch.Generator().manual_seed(1)
    centre = torch.randn(2, 1, 64, 64, generator=generator)
    truth = centre + torch.randn(2, 1, 64, 64, generator=generator)
    calibrated = centre[:, None] + torch.randn(2, 8, 1, 64, 64, generator=generator)
    narrow = centre[:, None] + 0.5 * torch.randn(2, 8, 1, 64, 64, generator=generator)
    assert float(spread_skill(calibrated, truth)[0]) == pytest.approx(1.0, rel=0.03)
    assert float(spread_skill(narrow, truth)[0]) == pytest.approx(math.sqrt(0.25 * 9 / 8 / (1 + 0.25 / 8)), rel=0.03)
    assert torch.isnan(spread_skill(calibrated[:, :1], truth)).all()  # one member has no spread


def test_the_transition_distance_is_zero_between_equal_sets_and_grows_with_a_shift():
    generator = torch.Generator().manual_seed(2)
    states = torch.randn(6, 5, 8, 8, generator=generator)
    assert float(transition_distance(states, states)) == pytest.approx(0.0, abs=1e-12)
    near, far = transition_distance(states, states + 0.1), transition_distance(states, states + 1.0)
    assert 0 < float(near) < float(far) and float(far) == pytest.approx(10 * float(near), rel=1e-6)
