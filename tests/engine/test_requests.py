"""One request per operation: the CLI's flags build the same request the dashboard builds, and a request crosses
into a worker process as plain values and comes back equal."""
import pickle

import pytest

from engine.cli import build_parser, request_from_args
from engine.config import ForecastSamplerConfig, GRFConfig, ModelConfig, RolloutConfig, SamplerConfig, TrainingConfig
from engine.pipelines.coarse_data import CoarseRequest
from engine.pipelines.generate_data import DataRequest
from engine.pipelines.rollout import RolloutRequest
from engine.pipelines.sample import SampleRequest
from engine.pipelines.superres import SuperresRequest
from engine.pipelines.train import TrainRequest
from engine.worker import REQUESTS

BUILT = [TrainRequest(data="g.nc", out="runs/x", task="forecast", model=ModelConfig(size="small"),
                      training=TrainingConfig(steps=7, lr=1e-3)),
         SampleRequest(data="g.nc", model=ModelConfig(kind="analytic"), sampler=SamplerConfig(steps=5), count=3),
         RolloutRequest(checkpoint="runs/si/checkpoint.pt", config=RolloutConfig(steps=9, members=2),
                        sampler=ForecastSamplerConfig(method="pf_ode", steps=2), scheduler="tcp://h:8786"),
         SuperresRequest(checkpoint="runs/pdd/checkpoint.pt", sequences=2, from_noise=True),
         DataRequest(generator="grf", config=GRFConfig(size=16, count=8), name="g.nc"),
         CoarseRequest(data="g.nc", out="c.nc")]


@pytest.mark.parametrize("request_", BUILT, ids=lambda r: r.command)
def test_a_request_crosses_into_a_worker_as_plain_values_and_comes_back_equal(request_):
    values = request_.options()
    assert pickle.loads(pickle.dumps(values)) == values  # plain values only
    assert type(request_).from_options(values).options() == values


def test_the_cli_builds_the_request_the_dashboard_builds():
    parser = build_parser()
    cases = [(["train", "--data", "g.nc", "--out", "runs/x", "--task", "forecast", "--model-size", "small",
               "--steps", "7", "--lr", "1e-3"], TrainRequest, BUILT[0]),
             (["sample", "--data", "g.nc", "--model", "analytic", "--steps", "5", "--count", "3"], SampleRequest,
              BUILT[1]),
             (["rollout", "--checkpoint", "runs/si/checkpoint.pt", "--steps", "9", "--members", "2", "--sampler",
               "pf_ode", "--sampler-steps", "2", "--scheduler", "tcp://h:8786"], RolloutRequest, BUILT[2]),
             (["superres", "--checkpoint", "runs/pdd/checkpoint.pt", "--sequences", "2", "--from-noise"],
              SuperresRequest, BUILT[3])]
    for argv, cls, expected in cases:
        assert request_from_args(cls, parser.parse_args(argv)).options() == expected.options(), argv


def test_every_job_kind_is_a_request_type_of_its_own_command():
    assert {kind: cls.command for kind, cls in REQUESTS.items()} == {kind: kind for kind in REQUESTS}
    with pytest.raises(ValueError, match="has no field"):
        TrainRequest.from_options({"data": "g.nc", "out": "runs/x", "forecast_sampler": {}})
