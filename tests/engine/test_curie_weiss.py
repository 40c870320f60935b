"""Paper 003's Curie–Weiss model: the exact posterior against enumeration, the transport against the measure's own
statistics, and the claim that uniform VP misses the phase, uniform VE the spins, their dilations neither."""
import itertools
import math

import pytest
import torch

from engine.curie_weiss import (
    CurieWeiss,
    generate_spins,
    recovered_features,
    spin_statistics,
    spontaneous_magnetization,
)
from engine.errors import EngineError


def test_the_magnetization_is_the_mean_field_fixed_point_and_samples_carry_it():
    m = spontaneous_magnetization(2.0)
    assert m == pytest.approx(math.tanh(2.0 * m), abs=1e-14) and m == pytest.approx(0.957504, abs=1e-6)
    x = CurieWeiss(2000, p=0.8).sample(4000, torch.Generator().manual_seed(0))
    stats = spin_statistics(x)
    assert set(x.unique().tolist()) == {-1.0, 1.0}
    assert stats.p_hat == pytest.approx(0.8, abs=3 * math.sqrt(0.16 / 4000))
    assert stats.magnetization == pytest.approx(m, abs=0.002)  # |M|/d has std √((1 − m²)/d) ≈ 0.006 per sample


def test_the_posterior_spin_mean_equals_enumeration_over_every_configuration_and_phase():
    """η(x) = Σ_s s P(s) exp(κ x·s) / Σ_s P(s) exp(κ x·s) over all 2^d spins, P(s) = Σ_σ P(σ) Π((1 + σ m s_i)/2)."""
    model, kappa = CurieWeiss(6, p=0.7, coupling=1.5), 0.8
    m = model.magnetization
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 1.5
    spins = torch.tensor(list(itertools.product((-1.0, 1.0), repeat=6)), dtype=torch.float64)  # (64, 6)
    prior = sum(weight * ((1 + sign * m * spins) / 2).prod(-1) for sign, weight in ((1, 0.7), (-1, 0.3)))
    weights = prior * torch.exp(kappa * x @ spins.T)  # (5, 64)
    exact = weights @ spins / weights.sum(-1, keepdim=True)
    assert torch.allclose(model.posterior_mean(x, torch.tensor(kappa, dtype=torch.float64)), exact, atol=1e-13)


def test_euler_on_the_exact_drift_with_fine_steps_draws_the_measure():
    """d = 5 (odd, so M ≠ 0): P(M > 0) and E|M|/d of the measure in closed form; 4000 samples, 400 VP steps."""
    model = CurieWeiss(5, p=0.8)
    m = model.magnetization
    run = generate_spins(model, "vp", 400, count=4000, seed=2)
    stats = spin_statistics(run.x)
    aligned = [math.comb(5, j) * ((1 + m) / 2) ** j * ((1 - m) / 2) ** (5 - j) for j in range(6)]  # j spins = σ
    p_positive = sum(0.8 * aligned[j] + 0.2 * aligned[5 - j] for j in range(3, 6))
    mean_abs = sum(aligned[j] * abs(2 * j - 5) / 5 for j in range(6))
    assert stats.p_hat == pytest.approx(p_positive, abs=3 * math.sqrt(p_positive * (1 - p_positive) / 4000))
    assert stats.magnetization == pytest.approx(mean_abs, abs=0.015)
    assert stats.spin_square == pytest.approx(1.0, abs=0.01)
    assert run.magnetization.shape == (401, 4000) and torch.equal(run.magnetization[-1], run.x.mean(-1))


def test_at_d_10_4_and_32_steps_vp_misses_the_phase_ve_the_spins_and_the_dilations_get_both():
    """Paper 003 on Curie–Weiss (J = 2, p = 0.8, k = 3), 200 samples: absolute bounds far outside the sampling
    error (p̂ has std 0.03): VP puts ≥ 95% in the + phase, VE leaves ⟨x²⟩ ≤ 0.95; dilated both within tolerance."""
    model = CurieWeiss(10_000, p=0.8)
    stats = {kind: spin_statistics(generate_spins(model, kind, 32, count=200, seed=3).x)
             for kind in ("vp", "ve", "vp_dilated", "ve_dilated")}
    assert stats["vp"].p_hat >= 0.95 and abs(stats["vp"].spin_square - 1) <= 0.05
    assert stats["ve"].spin_square <= 0.95 and abs(stats["ve"].p_hat - 0.8) <= 0.1
    for kind in ("vp_dilated", "ve_dilated"):
        assert recovered_features(model, stats[kind]) == (True, True), (kind, stats[kind])


def test_bad_parameters_are_refused_in_one_line():
    with pytest.raises(EngineError, match="coupling 1 < J"):
        CurieWeiss(100, coupling=0.5)
    with pytest.raises(EngineError, match="steps ≥ 1"):
        generate_spins(CurieWeiss(10), "vp", 0)
    with pytest.raises(EngineError, match="100000 samples of 10000000 spins needs about .* available: ask for fewer"):
        generate_spins(CurieWeiss(10_000_000), "vp", 1, count=100_000)  # 32 TB: refused before any allocation
