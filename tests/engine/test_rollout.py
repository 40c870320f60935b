import math

import pytest
import torch

from engine.config import RolloutConfig
from engine.data.grf import grf_power
from engine.interpolants import GaussianModel, interpolate
from engine.noise import sample_noise, white_spectrum
from engine.pipelines.rollout import rollout_dataset
from engine.refine import Refiner
from engine.rollout import CHECK_EVERY, evaluate, initial_conditions, rollout
from engine.schedules import make_schedule
from engine.spectral import shell_spectra, shell_sum

N = 16


def _start(members=3):
    return torch.randn(members, N, N, generator=torch.Generator().manual_seed(0))


def test_a_rollout_that_produces_nan_stops_at_that_step_and_keeps_what_it_computed():
    calls = []

    def step(x):
        calls.append(1)
        return x * float("nan") if len(calls) == 7 else x + 0.01

    result = rollout(step, _start(), RolloutConfig(steps=100, save_every=2), data_std=1.0)
    assert result.blowup_step == 7 and result.reason == "NaN or infinite values"
    assert result.steps_done == 6 and result.saved_steps == [0, 2, 4, 6]
    assert result.spectra.shape == (7, N // 2 + 1) and torch.isfinite(result.states).all()
    assert len(calls) == CHECK_EVERY  # found at the next periodic check, not by a host sync every step


def test_growth_past_the_blowup_bound_is_caught_at_the_exact_step():
    x0 = torch.ones(2, N, N)
    result = rollout(lambda x: 2 * x, x0, RolloutConfig(steps=40, blowup=20.0), data_std=1.0)
    assert result.blowup_step == 5  # 2^5 = 32 > 20 ≥ 2^4
    assert result.reason.startswith("max|u − mean| above 20")
    torch.testing.assert_close(result.states[:, -1], 16 * x0)


def test_a_stable_rollout_runs_to_the_end_and_becomes_a_dataset():
    shift = lambda x: torch.roll(x, 1, dims=-1)  # noqa: E731 a translation: spectra stay put
    config = RolloutConfig(steps=20, members=3, save_every=5)
    result = rollout(shift, _start(), config, data_std=1.0)
    assert result.blowup_step is None and result.steps_done == 20 and result.saved_steps == [0, 5, 10, 15, 20]
    torch.testing.assert_close(result.spectra[-1], result.spectra[0])
    ds = rollout_dataset(result, dt=0.5, variable="vorticity", config=config)
    assert ds["vorticity"].dims == ("member", "time", "y", "x") and list(ds["time"].values) == [0, 2.5, 5, 7.5, 10]
    assert ds["spectrum"].dims == ("step", "wavenumber") and ds.attrs["blowup_step"] == "none"
    stopped = rollout(shift, _start(), RolloutConfig(steps=200), data_std=1.0, should_stop=lambda: True)
    assert stopped.reason == "stopped" and stopped.steps_done == 1


def test_scores_do_not_depend_on_the_data_s_units():
    """The same rollout of fields in units ~1 and ~10⁻⁵ (the QG jet's PV in s⁻¹) gets the same VRMSE and band sRMSE
    (scored in units of the test data's std); in SI units ε = 10⁻⁶ used to swamp both (VRMSE 600× too small)."""
    truth = torch.randn(2, 6, N, N, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    step = lambda x: 0.9 * torch.roll(x, 1, dims=-1)  # noqa: E731 a damped translation: nonzero errors
    config = RolloutConfig(steps=5, members=1, initial_conditions=2)
    scores = {}
    for unit in (1.0, 1e-5):
        result = rollout(step, initial_conditions(truth * unit, config), config, data_std=unit)
        scores[unit] = evaluate(result, truth * unit, config, lead=1)
    assert scores[1.0]["vrmse"][1] > 0.5
    assert scores[1e-5]["vrmse"] == pytest.approx(scores[1.0]["vrmse"], rel=1e-5, abs=1e-6)
    for band in ("low", "mid", "high"):
        assert scores[1e-5]["band_errors"][band] == pytest.approx(scores[1.0]["band_errors"][band], rel=1e-4, abs=1e-6)


def test_initial_conditions_repeat_each_trajectory_per_member():
    trajectories = torch.arange(2 * 5 * 4.0).reshape(2, 5, 2, 2)
    x = initial_conditions(trajectories, RolloutConfig(members=3, initial_conditions=2, start=1))
    assert x.shape == (6, 2, 2) and torch.equal(x[0], trajectories[0, 1]) and torch.equal(x[3], trajectories[1, 1])


def _gaussian_refiner():
    data_power = grf_power(32, 3.0, 1.0, 1.0).double()
    data_power = data_power / data_power.sum()
    noise_power = white_spectrum(32, 1.0).double()
    schedule = make_schedule("vp", dimension=32 * 32)
    return GaussianModel(noise_power, data_power, schedule), data_power, noise_power, schedule


@pytest.mark.parametrize("noise_fraction", [0.02, 0.2])
def test_the_refiner_estimates_the_noise_level_and_removes_it(noise_fraction):
    model, data_power, noise_power, schedule = _gaussian_refiner()
    g = torch.Generator().manual_seed(4)
    clean, noise = sample_noise(data_power, 64, g), sample_noise(noise_power, 64, g)
    t_true = 2 / math.pi * math.acos(math.sqrt(noise_fraction))  # VP: α = cos(πt/2)
    noisy = interpolate(schedule(torch.tensor(t_true, dtype=torch.float64)), noise, clean)
    refiner = Refiner(model, schedule, noise_power, data_power, steps=16)
    estimated = refiner.noise_level(noisy)
    assert (estimated - t_true).abs().max() < 0.04 and abs(float(estimated.mean()) - t_true) < 0.01  # one field each
    refined, mask = refiner(noisy)
    assert mask.all()
    fine = slice(8, 17)
    target = shell_sum(data_power)[fine]
    before = (shell_spectra(noisy).mean(0)[fine] / target).log().abs().mean()
    after = (shell_spectra(refined).mean(0)[fine] / target).log().abs().mean()
    assert after < 0.25 * before, (float(before), float(after))


def test_clean_states_are_left_alone():
    model, data_power, noise_power, schedule = _gaussian_refiner()
    clean = sample_noise(data_power, 8, torch.Generator().manual_seed(5))
    refined, mask = Refiner(model, schedule, noise_power, data_power)(clean)
    assert not mask.any() and torch.equal(refined, clean)


def test_renoising_restores_the_fine_scales_of_over_smoothed_states():
    from engine.spectral import lowpass

    model, data_power, noise_power, schedule = _gaussian_refiner()
    clean = sample_noise(data_power, 64, torch.Generator().manual_seed(6))
    smooth = lowpass(clean, 6.0)  # what an over-smoothing surrogate produces
    target = shell_sum(data_power)[8:15]

    def fine_error(x):
        return (shell_spectra(x).mean(0)[8:15] / target).log().abs().mean()

    thermalizer = Refiner(model, schedule, noise_power, data_power, steps=16)
    assert not thermalizer(smooth)[1].any()  # it sees no noise, so it leaves them
    refined, mask = Refiner(model, schedule, noise_power, data_power, steps=16, renoise=0.2)(smooth)
    errors = (float(fine_error(smooth)), float(fine_error(refined)))
    assert mask.all() and fine_error(refined) < 0.2 * fine_error(smooth), errors


def test_a_field_far_from_zero_is_judged_by_its_distance_from_the_mean():
    """A temperature near 300 K with a std of 1 K is not a blow-up: the bound is on |u − mean|."""
    x0 = 300 + torch.randn(2, N, N, generator=torch.Generator().manual_seed(0))
    kept = rollout(lambda x: x, x0, RolloutConfig(steps=20, blowup=20.0), data_std=1.0, data_mean=300.0)
    assert kept.blowup_step is None and kept.steps_done == 20
    grown = rollout(lambda x: 300 + 2 * (x - 300), x0, RolloutConfig(steps=20, blowup=20.0), data_std=1.0,
                    data_mean=300.0)
    assert grown.blowup_step is not None and grown.blowup_step < 8
