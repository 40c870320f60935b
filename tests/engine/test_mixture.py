"""Paper 003's two-mode mixture: Euler on the exact drift, checked in absolute terms (tolerances in the names)."""
import pytest
import torch

from engine.errors import EngineError
from engine.mixture import (
    MIXTURE_SCHEDULES,
    TwoModeMixture,
    from_full,
    generate_mixture,
    mixture_schedule,
    mode_statistics,
    recovered,
    reduced_euler,
)

MIXTURE = TwoModeMixture(d=10000, p=0.8, sigma2=0.5)


def _statistics(mixture, kind, steps, count=2000):
    return mode_statistics(generate_mixture(mixture, kind, steps, count))


@pytest.mark.parametrize("kind", MIXTURE_SCHEDULES)
def test_the_reduced_euler_equals_euler_on_every_coordinate_to_1e_12(kind):
    """Euler on (x·μ̂, |x⊥|²) is Euler on x ∈ R^50 itself, for every path."""
    mixture = TwoModeMixture(d=50, p=0.7, sigma2=0.4)
    schedule = mixture_schedule(kind, 50)
    x = torch.randn(20, 50, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    ts = torch.linspace(0.0, 1.0, 17, dtype=torch.float64)
    reduced = reduced_euler(mixture, schedule, from_full(x), ts)
    drift = mixture.drift(schedule)
    for t, t_next in zip(ts[:-1], ts[1:]):
        x = x + (t_next - t) * drift(t, x)
    full = from_full(x)
    assert torch.allclose(reduced.along, full.along, rtol=0, atol=1e-12)
    assert torch.allclose(reduced.across, full.across, rtol=1e-12, atol=0)


def test_many_steps_on_the_exact_drift_recover_both_features_within_0_02_and_2_percent():
    p_hat, sigma2_hat = _statistics(MIXTURE, "vp_dilated", steps=400)
    assert p_hat == pytest.approx(0.8, abs=0.02) and sigma2_hat == pytest.approx(0.5, rel=0.02)


def test_at_64_steps_uniform_vp_misses_p_uniform_ve_misses_sigma2_and_both_dilations_get_both():
    """The Interpolant view's defaults (d = 10⁴, 64 steps, k = 3): ✓ means within 0.04 of p and 15% of σ²."""
    verdicts = {kind: recovered(MIXTURE, *_statistics(MIXTURE, kind, 64, count=500)) for kind in MIXTURE_SCHEDULES}
    assert verdicts == {"vp": (False, True), "ve": (True, False), "vp_dilated": (True, True),
                        "ve_dilated": (True, True)}


@pytest.mark.parametrize("kind, feature", [("vp_dilated", 0), ("ve_dilated", 1)])
def test_a_dilated_grid_needs_steps_that_do_not_grow_with_d(kind, feature):
    """At 64 steps the dilated grid's error in the feature the uniform grid misses is the same (within 0.015) at
    d = 10³, 10⁴ and 10⁵ and small (p within 0.02, σ² within 15%), while the uniform grid's grows with d."""
    truth = (0.8, 0.5)[feature]
    dimensions = (1000, 10000, 100000)
    dilated = [abs(_statistics(TwoModeMixture(d, 0.8, 0.5), kind, 64)[feature] - truth) for d in dimensions]
    uniform = [abs(_statistics(TwoModeMixture(d, 0.8, 0.5), kind[:2], 64)[feature] - truth) for d in dimensions]
    assert max(dilated) - min(dilated) < 0.015 and max(dilated) < (0.02, 0.075)[feature]
    assert uniform[0] < uniform[1] < uniform[2] and uniform[2] > 5 * max(dilated)


def test_bad_mixtures_are_refused():
    with pytest.raises(EngineError, match="0 < p < 1"):
        TwoModeMixture(d=10, p=1.0)
    with pytest.raises(EngineError, match="mixture schedules"):
        generate_mixture(TwoModeMixture(d=10), "linear", steps=4)
