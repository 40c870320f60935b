"""Groups of runs trained from several seeds (``train --seeds``) and their rollouts' spread over the seeds."""
import json
import math

import pytest
import torch

from engine.cli import main
from engine.config import TrainingConfig
from engine.errors import EngineError
from engine.forecast import load_forecaster
from engine.groups import spread_over_seeds
from engine.pipelines.train import TrainRequest


def test_the_spread_over_seeds_is_the_mean_std_and_range_of_each_lead():
    spread = spread_over_seeds([[1.0, 2.0, 5.0], [3.0, 4.0], [2.0, math.nan, 7.0]])
    assert spread["mean"] == [2.0, 3.0] and spread["min"] == [1.0, 2.0] and spread["max"] == [3.0, 4.0]
    assert spread["std"] == pytest.approx([1.0, math.sqrt(2.0)])  # sample std; the NaN is left out


def test_a_two_seed_group_trains_rolls_out_and_reports_its_spread(tmp_path, capsys):
    folder = ["--data-dir", str(tmp_path)]
    assert main([*folder, "data", "kolmogorov", "--size", "16", "--trajectories", "2", "--snapshots", "8",
                 "--spin-up", "0", "--save-interval", "0.1", "--out", "k.nc"]) == 0
    assert main([*folder, "train", "--data", "k.nc", "--task", "pointwise", "--out", "runs/g", "--steps", "3",
                 "--batch-size", "2", "--seeds", "2", "--seed", "5"]) == 0
    members = [load_forecaster(tmp_path / f"runs/g/seed-{k}/checkpoint.pt") for k in (0, 1)]
    weights = [next(m.net.parameters()).detach() for m in members]
    assert not torch.equal(*weights)  # seeds 5 and 6: different initial weights
    capsys.readouterr()
    assert main([*folder, "rollout", "--checkpoint", "runs/g", "--data", "k.nc", "--steps", "3", "--members", "2",
                 "--initial-conditions", "1", "--out", "r.nc", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    group = summary["group"]
    assert group["seeds"] == 2 and group["lead_steps"] == summary["lead_steps"]
    lows, highs, means = (group["vrmse"][key] for key in ("min", "max", "mean"))
    assert all(low <= mean <= high for low, mean, high in zip(lows, means, highs)) and highs[1] > lows[1]
    assert (tmp_path / "r-seed-0.nc").exists() and (tmp_path / "r-seed-1.nc").exists()
    with pytest.raises(EngineError, match="--seeds must be between 1 and 20"):
        TrainRequest(data="k.nc", out="runs/h", seeds=0).run(store=None)
    top = 2**31 - 1  # the training seed's bound: a group may not step past it
    with pytest.raises(EngineError, match=f"would train seeds past {top}; start at --seed {top - 1} or below"):
        TrainRequest(data="k.nc", out="runs/h", seeds=2, training=TrainingConfig(seed=top)).run(store=None)
