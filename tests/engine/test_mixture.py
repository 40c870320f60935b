import pytest

from engine.errors import EngineError
from engine.mixture import TwoModeMixture, generate_mixture, mode_statistics

MIXTURE = TwoModeMixture(d=3000, p=0.8, sigma2=0.5)


def test_many_steps_on_the_exact_drift_recover_both_features():
    p_hat, sigma2_hat = mode_statistics(generate_mixture(MIXTURE, "vp_dilated", steps=400, count=500))
    assert p_hat == pytest.approx(0.8, abs=0.04) and sigma2_hat == pytest.approx(0.5, abs=0.02)


def test_uniform_vp_gets_the_variance_but_not_the_weights_and_ve_the_opposite():
    """Paper 003 with 8 Euler steps in d = 3000."""
    p_vp, s_vp = mode_statistics(generate_mixture(MIXTURE, "vp", steps=8))
    assert s_vp == pytest.approx(0.5, abs=0.02) and abs(p_vp - 0.8) > 0.15
    p_ve, s_ve = mode_statistics(generate_mixture(MIXTURE, "ve", steps=8))
    assert p_ve == pytest.approx(0.8, abs=0.04) and s_ve > 10 * 0.5


def test_time_dilation_fixes_what_each_uniform_grid_misses():
    p_vp = mode_statistics(generate_mixture(MIXTURE, "vp", steps=16))[0]
    p_dilated = mode_statistics(generate_mixture(MIXTURE, "vp_dilated", steps=16))[0]
    assert abs(p_dilated - 0.8) < 0.5 * abs(p_vp - 0.8)
    s_ve = mode_statistics(generate_mixture(MIXTURE, "ve", steps=16))[1]
    s_dilated = mode_statistics(generate_mixture(MIXTURE, "ve_dilated", steps=16))[1]
    assert abs(s_dilated - 0.5) < 0.05 * abs(s_ve - 0.5)


def test_bad_mixtures_are_refused():
    with pytest.raises(EngineError, match="0 < p < 1"):
        TwoModeMixture(d=10, p=1.0)
    with pytest.raises(EngineError, match="mixture schedules"):
        generate_mixture(TwoModeMixture(d=10), "linear", steps=4)
