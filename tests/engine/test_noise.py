import math

import pytest
import torch

from engine.errors import EngineError
from engine.noise import noise_spectrum, powerlaw_spectrum, sample_noise, white_spectrum
from engine.spectral import modal_power, radial_spectrum, shell_counts, shell_sum


def _relative_spectrum_error(power, count=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = sample_noise(power, count, g, dtype=torch.float64)
    measured = radial_spectrum(x)[1:]
    expected = shell_sum(power)[1:]
    return ((measured - expected) / expected).abs(), x


@pytest.mark.parametrize("exponent", [0.0, 2.0, 6.0])
def test_powerlaw_noise_has_requested_spectrum(exponent):
    n = 32
    power = powerlaw_spectrum(n, exponent)
    rel, x = _relative_spectrum_error(power)
    # Shell k holds ~2πk modes (half independent for a real field); with 512 samples the relative
    # standard error of a shell sum is ≤ 1/sqrt(512 · 2) ≈ 0.031 per shell; allow 5 standard errors.
    assert rel.max() < 0.16
    assert rel.mean() < 0.03
    assert abs(float(x.var()) - 1.0) < 0.05
    assert float(x.mean(dim=(-1, -2)).abs().max()) < 1e-12  # zero mean mode


def test_white_noise_modal_variance_is_flat():
    n = 16
    power = white_spectrum(n, variance=2.0)
    assert math.isclose(float(power.sum()), 2.0, rel_tol=1e-12)
    g = torch.Generator().manual_seed(1)
    measured = modal_power(sample_noise(power, 4000, g, dtype=torch.float64))
    ratio = measured[power > 0] / power[power > 0]
    assert float((ratio - 1).abs().mean()) < 0.03


def test_matched_noise_reproduces_data_spectrum_shells():
    n = 32
    data_power = powerlaw_spectrum(n, 6.0, variance=3.0)
    shell_mean = shell_sum(data_power) / shell_counts(n)
    matched = noise_spectrum("matched", n, shell_mean)
    assert torch.allclose(shell_sum(matched)[1:], shell_sum(data_power)[1:], rtol=1e-10)


def test_unknown_kind_and_missing_spectrum_are_clear_errors():
    with pytest.raises(EngineError, match="noise kind must be one of"):
        noise_spectrum("pink", 8)
    with pytest.raises(EngineError, match="matched noise needs a data spectrum"):
        noise_spectrum("matched", 8)
