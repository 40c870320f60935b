import torch

from engine.data.grf import grf_power
from engine.interpolants import GaussianModel, ScheduleTransfer, ScoreFromDrift, interpolate, velocity_target
from engine.noise import sample_noise, white_spectrum
from engine.schedules import make_schedule
from engine.spectral import modal_power

N = 16


def _model(kind="linear", **kw):
    return GaussianModel(white_spectrum(N, variance=float(grf_power(N, 3.0).sum())), grf_power(N, 3.0),
                         make_schedule(kind, dimension=N * N, **kw))


def test_interpolant_endpoints_and_target():
    g = torch.Generator().manual_seed(0)
    x0, x1, z = (torch.randn(2, N, N, generator=g, dtype=torch.float64) for _ in range(3))
    s = make_schedule("powerlaw", dimension=N * N, beta_form="t^2", gamma_sigma=1.0)
    assert torch.allclose(interpolate(s(0.0), x0, x1, z), x0)
    assert torch.allclose(interpolate(s(1.0), x0, x1, z), x1)
    # target = d/dt x_t along the path
    h, t = 1e-6, 0.3
    fd = (interpolate(s(t + h), x0, x1, z) - interpolate(s(t - h), x0, x1, z)) / (2 * h)
    assert torch.allclose(velocity_target(s(t), x0, x1, z), fd, atol=1e-6)


def test_exact_drift_is_the_regression_minimizer():
    # Monte Carlo: E[target · x_t] = E[b(x_t) · x_t] per mode, i.e. b's gain is Cov(target, x_t)/Var(x_t).
    model = _model("vp")
    g = torch.Generator().manual_seed(1)
    x0 = sample_noise(model.noise_power, 20000, g, torch.float64)
    x1 = sample_noise(model.data_power, 20000, g, torch.float64)
    c = model.schedule(0.4)
    xt, target = interpolate(c, x0, x1), velocity_target(c, x0, x1)
    xh, th = torch.fft.rfft2(xt, norm="forward"), torch.fft.rfft2(target, norm="forward")
    estimated_gain = (th * xh.conj()).real.mean(0) / (xh.abs() ** 2).mean(0)
    gain = model.gain(0.4)
    mask = gain.abs() > 0
    assert torch.allclose(estimated_gain[mask], gain[mask], rtol=0.1, atol=0.05)


def test_exact_variance_matches_sampled_interpolant():
    model = _model("powerlaw", beta_form="2t^2/(t+1)", gamma_sigma=0.5)
    g = torch.Generator().manual_seed(2)
    x0 = sample_noise(model.noise_power, 8000, g, torch.float64)
    x1 = sample_noise(model.data_power, 8000, g, torch.float64)
    z = torch.randn(8000, N, N, generator=g, dtype=torch.float64)
    xt = interpolate(model.schedule(0.6), x0, x1, z)
    measured = modal_power(xt)[:, : N // 2 + 1]
    expected = model.variance(0.6)
    assert torch.allclose(measured, expected, rtol=0.08)


def test_score_from_drift_equals_exact_score():
    model = _model("linear")
    score = ScoreFromDrift(model, model.schedule)
    x = sample_noise(grf_power(N, 3.0), 4, torch.Generator().manual_seed(3), torch.float64)
    for t in (0.1, 0.5, 0.9):
        assert torch.allclose(score(torch.tensor(t, dtype=torch.float64), x), model.score(t, x), atol=1e-9)


def test_schedule_transfer_reproduces_the_target_schedules_exact_drift():
    trained = _model("linear")
    x = sample_noise(grf_power(N, 3.0), 3, torch.Generator().manual_seed(4), torch.float64)
    for kind, kw in [("vp", {}), ("designed", {"r": 1e-4}), ("vp_dilated", {"dilation_k": 3.0})]:
        target = _model(kind, **kw)
        transfer = ScheduleTransfer(trained, trained.schedule, target.schedule)
        for t in (0.2, 0.55, 0.8):
            tt = torch.tensor(t, dtype=torch.float64)
            assert torch.allclose(transfer(tt, x), target(tt, x), rtol=1e-6, atol=1e-8), (kind, t)
