"""An ensemble scored part by part (one initial condition's members at a time, in any order, parts stopping at
different steps) gets the scores of the whole ensemble cut where its shortest part stopped, by the diagnostics'
own formulas."""
import pytest
import torch

from engine.config import RolloutConfig
from engine.diagnostics import (
    band_spectral_rmse,
    correlation,
    crps,
    rate_of_change,
    spread_skill,
    transition_distance,
    vrmse,
)
from engine.errors import EngineError
from engine.scores import EnsembleScores

IC, MEMBERS, COLUMNS, N = 3, 3, 10, 16


def _ensemble():
    generator = torch.Generator().manual_seed(0)
    truth = torch.randn(IC, 12, N, N, generator=generator).cumsum(1)  # 12 snapshots: the last 2 columns lack truth
    states = truth[:, :COLUMNS].repeat_interleave(MEMBERS, 0) + torch.randn(IC * MEMBERS, COLUMNS, N, N,
                                                                             generator=generator)
    return truth, states


def test_parts_in_any_order_give_the_whole_ensembles_scores_cut_where_the_shortest_part_stopped():
    truth, states = _ensemble()
    config = RolloutConfig(steps=2 * (COLUMNS - 1), save_every=2, members=MEMBERS, initial_conditions=IC)
    scores = EnsembleScores(truth=truth, config=config, lead=1, saved_steps=list(range(0, 2 * COLUMNS, 2)))
    reached = 4  # part 1 stopped after its 4th saved column
    for part in (2, 0, 1):
        own = states[part * MEMBERS: (part + 1) * MEMBERS]
        scores.add(part, own[:, :reached] if part == 1 else own)
    whole = states[:, :reached]
    frames = truth[:, [0, 2, 4, 6]]  # saved steps 0, 2, 4, 6 at lead 1
    aligned, unit = frames.repeat_interleave(MEMBERS, 0), float(truth.std())
    ensemble = whole.reshape(IC, MEMBERS, reached, N, N)
    got = scores.scores()
    assert scores.columns() == reached and got["lead_steps"] == [0, 2, 4, 6]
    assert torch.allclose(torch.tensor(got["vrmse"]), vrmse(whole / unit, aligned / unit), rtol=1e-6)
    for band, values in band_spectral_rmse(whole / unit, aligned / unit).items():
        assert torch.allclose(torch.tensor(got["band_errors"][band], dtype=torch.float64), values, rtol=1e-9)
    assert torch.allclose(torch.tensor(got["crps"], dtype=torch.float64), crps(ensemble, frames), rtol=1e-9)
    assert torch.allclose(torch.tensor(got["spread_skill"], dtype=torch.float64), spread_skill(ensemble, frames),
                          rtol=1e-9)
    assert got["transition_w1"] == pytest.approx(float(transition_distance(whole, frames)), rel=1e-9)
    stats = scores.statistics(dt=0.5)
    assert torch.allclose(torch.tensor(stats["correlation"]["emulator"], dtype=torch.float64),
                          correlation(whole.double(), reached - 1), rtol=1e-9)
    assert torch.allclose(torch.tensor(stats["rate"]["emulator"], dtype=torch.float64),
                          rate_of_change(whole.double(), 0.5 * 2), rtol=1e-9)
    assert stats["saved_time"] == [0.0, 1.0, 2.0, 3.0]


def test_a_part_that_arrives_twice_is_refused():
    truth, states = _ensemble()
    config = RolloutConfig(steps=COLUMNS - 1, members=MEMBERS, initial_conditions=IC)
    scores = EnsembleScores(truth=truth, config=config, lead=1, saved_steps=list(range(COLUMNS)))
    scores.add(0, states[:MEMBERS])
    with pytest.raises(EngineError, match="part 0 of the ensemble arrived twice"):
        scores.add(0, states[:MEMBERS])
