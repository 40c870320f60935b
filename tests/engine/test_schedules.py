import math

import pytest
import torch

from engine.errors import EngineError
from engine.schedules import BETA_FORMS, SCHEDULE_KINDS, make_schedule, spectral_ratio_at_highest_wavenumber

D = 64 * 64


def _all_schedules():
    out = [(kind, make_schedule(kind, dimension=D, r=1e-3)) for kind in SCHEDULE_KINDS if kind != "powerlaw"]
    out += [(f"powerlaw[{f}]", make_schedule("powerlaw", dimension=D, beta_form=f, gamma_sigma=0.7))
            for f in BETA_FORMS]
    out.append(("designed[r=1]", make_schedule("designed", dimension=D, r=1.0)))
    return out


@pytest.mark.parametrize("name,schedule", _all_schedules())
def test_boundary_values(name, schedule):
    c0, c1 = schedule(0.0), schedule(1.0)
    assert float(c1.alpha) == pytest.approx(0.0, abs=1e-9)
    assert float(c0.gamma) == pytest.approx(0.0, abs=1e-12)
    assert float(c1.gamma) == pytest.approx(0.0, abs=1e-12)
    # VE starts from pure noise of std σ_max = √d (x_τ = σ_max (1 − τ) x0 + τ x1), the others from unit noise
    assert float(c0.alpha) == pytest.approx(D**0.5 if name.startswith("ve") else 1.0)
    assert float(c0.beta) == pytest.approx(0.0, abs=1e-12) and float(c1.beta) == pytest.approx(1.0)


@pytest.mark.parametrize("name,schedule", _all_schedules())
def test_derivatives_match_finite_differences(name, schedule):
    t = torch.linspace(0.02, 0.98, 49, dtype=torch.float64)
    t = t[(t - 0.5).abs() > 0.011]  # dilated schedules have a kink at t = 1/2
    h = 1e-6
    cp, cm, c = schedule(t + h), schedule(t - h), schedule(t)
    for value, deriv, half_rate in [("alpha", "dalpha", "alpha_dalpha"), ("beta", "dbeta", "beta_dbeta"),
                                    ("gamma", "dgamma", "gamma_dgamma")]:
        fd = (getattr(cp, value) - getattr(cm, value)) / (2 * h)
        assert torch.allclose(getattr(c, deriv), fd, rtol=1e-5, atol=1e-6), (name, deriv)
        fd_sq = (getattr(cp, value) ** 2 - getattr(cm, value) ** 2) / (4 * h)
        assert torch.allclose(getattr(c, half_rate), fd_sq, rtol=1e-5, atol=1e-5), (name, half_rate)


def test_designed_schedule_half_rates_are_finite_where_derivatives_are_not():
    c = make_schedule("designed", dimension=D, r=1e-5)(0.0)
    assert torch.isinf(c.dbeta)
    assert torch.isfinite(c.beta_dbeta) and float(c.beta_dbeta) > 0


def test_designed_schedule_spends_early_time_on_signal():
    # r ≪ 1: β² = (1 − r^t)/(1 − r) rises fast, so most of the data variance is in place early
    c = make_schedule("designed", dimension=D, r=1e-5)(0.2)
    assert float(c.beta**2) == pytest.approx(0.9, abs=0.01)
    assert float(c.alpha**2 + c.beta**2) == pytest.approx(1.0)


def test_bad_schedule_options_are_clear():
    with pytest.raises(EngineError, match="schedule must be one of"):
        make_schedule("cosine", dimension=D)
    with pytest.raises(EngineError, match="needs r > 0"):
        make_schedule("designed", dimension=D)
    with pytest.raises(EngineError, match="beta_form must be one of"):
        make_schedule("powerlaw", dimension=D, beta_form="t^3")
    with pytest.raises(EngineError, match="k/√d"):
        make_schedule("vp_dilated", dimension=16, dilation_k=5.0)


def test_designed_r_is_read_at_the_finest_shell_2_3_dealiased_kolmogorov_data_holds_not_an_empty_one():
    """On the shipped 64² flow (2/3-dealiased: |k_x|, |k_y| ≤ 21) shells 31 and 32 hold ~1e-16 of the peak; r is read
    at shell 30 (|log10 r| within 1e-12 of the ratio there), and white noise gives r of order 1e-2, not 6e-16."""
    from engine.data.fields import load_fields
    from engine.data.store import ASSETS
    from engine.noise import matched_spectrum, noise_spectrum
    from engine.spectral import finest_held_shell, shell_sum

    data = load_fields(ASSETS / "kolmogorov-64-test.nc")
    shell = data.spectrum / data.fields.std() ** 2
    data_power, white = matched_spectrum(shell, 64), noise_spectrum("white", 64, shell)
    assert finest_held_shell(shell_sum(data_power)) == 30
    r = spectral_ratio_at_highest_wavenumber(data_power, white)
    expected = float(shell_sum(data_power)[30] / shell_sum(white)[30])
    assert abs(math.log10(r) - math.log10(expected)) < 1e-12 and 1e-4 < r < 1e-1
    full = noise_spectrum("powerlaw", 64, shell, 2.0)  # no empty shell: read at N/2 as before
    assert spectral_ratio_at_highest_wavenumber(full, white) == float(shell_sum(full)[32] / shell_sum(white)[32])
