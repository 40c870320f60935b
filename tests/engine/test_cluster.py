"""Ensembles on a Dask cluster (engine.cluster): a LocalCluster of two single-threaded worker processes rolls out
the same ensemble as this process, bit for bit."""
import time

import numpy as np
import pytest
import torch

from app.jobs_view import JobsView
from engine.cluster import SCHEDULER_VARIABLE, map_parts, scheduler_address
from engine.config import (
    AllenCahnConfig,
    ClusterConfig,
    ForecastSamplerConfig,
    KolmogorovConfig,
    Lorenz96Config,
    RolloutConfig,
)
from engine.data.catalog import builtin_test_data, install_defaults
from engine.data.store import DataStore
from engine.errors import EngineError
from engine.jobs import JobManager
from engine.pipelines.generate_data import generate_data
from engine.pipelines.rollout import run_rollout

distributed = pytest.importorskip("distributed")
CHECKPOINT = "runs/shipped-si-forecaster/checkpoint.pt"


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as local:
        yield local


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = DataStore(tmp_path_factory.mktemp("cluster"))
    install_defaults(store)
    return store


def _at_one_thread(work):
    """Run ``work()`` at one intra-op thread, the workers' (CPU kernels split sums by thread count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return work()
    finally:
        torch.set_num_threads(threads)


def _roll(store: DataStore, scheduler: str | None, out: str | None = None, **config):
    return run_rollout(store=store, checkpoint=CHECKPOINT, data=builtin_test_data(store, CHECKPOINT),
                       config=RolloutConfig(**{"steps": 6, "members": 2, "initial_conditions": 3, "device": "cpu",
                                               **config}),
                       sampler=ForecastSamplerConfig(method="si_em", steps=2, seed=5), scheduler=scheduler, out=out)


def test_a_rollout_on_two_dask_workers_equals_the_local_one_bit_for_bit(store, cluster):
    """Three initial conditions × two members of the stochastic sampler (noise seeded per initial condition), here
    at the workers' one intra-op thread: CPU kernels split their sums by thread count (2 threads differ by 3e-5)."""
    local, remote = _at_one_thread(lambda: (_roll(store, None), _roll(store, cluster.scheduler_address)))
    assert local.rollout.states.shape == (6, 7, 64, 64)
    assert torch.equal(local.rollout.states, remote.rollout.states)
    assert torch.equal(local.rollout.spectra, remote.rollout.spectra)
    assert local.summary["vrmse"] == remote.summary["vrmse"] and local.summary["nfe"] == remote.summary["nfe"] == 36
    assert not torch.equal(local.rollout.states[0], local.rollout.states[1])  # the members' noise differs


@pytest.mark.parametrize("config", [{}, {"blowup": 4.2}], ids=["whole", "blown-up"])
def test_a_rollout_written_to_zarr_part_by_part_on_the_cluster_equals_the_local_netcdf(store, cluster, config):
    """The members go to the .zarr store as each part arrives and are dropped (the result holds none); fields,
    truth, spectra, scores and attrs equal the local netCDF's. Blown up (every part at step 1), both are cut to the
    saved steps every part reached."""
    suffix = "-".join(f"{key}{value}" for key, value in config.items())
    here, there = f"roll-here{suffix}.nc", f"roll-there{suffix}.zarr"
    local, remote = _at_one_thread(lambda: (_roll(store, None, here, **config),
                                            _roll(store, cluster.scheduler_address, there, **config)))
    assert remote.rollout.states.shape[0] == 0 and local.rollout.states.shape[0] == 6
    assert remote.summary["vrmse"] == local.summary["vrmse"] and remote.summary["crps"] == local.summary["crps"]
    with store.open(here) as netcdf, store.open(there) as zarr:
        assert dict(zarr.sizes) == dict(netcdf.sizes) and set(zarr.variables) == set(netcdf.variables)
        assert zarr.sizes["time"] == (1 if config else 7)
        for name in netcdf.variables:
            assert np.array_equal(netcdf[name].values, zarr[name].values, equal_nan=True), name
        assert {k: v for k, v in zarr.attrs.items() if k != "seconds"} == \
            {k: v for k, v in netcdf.attrs.items() if k != "seconds"}
    assert not list(store.root.glob(".*.tmp*"))  # the temporary stores were moved into place or removed


@pytest.mark.parametrize("config", [KolmogorovConfig(size=32, trajectories=3, snapshots=3, spin_up=0.5,
                                                     save_interval=0.25, device="cpu"),
                                    Lorenz96Config(trajectories=3, snapshots=20, spin_up=0.5),
                                    AllenCahnConfig(size=16, trajectories=3, snapshots=3, spin_up=2.0, device="cpu")],
                         ids=["kolmogorov", "lorenz96", "allen-cahn"])
@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_a_dataset_generated_on_the_cluster_equals_the_local_one(store, cluster, config, suffix):
    """Three trajectories as three tasks, each a share of the same seeded batch: gathered in order (.nc), or
    written share by share as they arrive (.zarr; the spectrum is then the field-weighted mean of the shares',
    equal to 1e-6 relative, the fields bit for bit)."""
    kind = type(config).__name__
    here, there = f"here-{kind}.nc", f"there-{kind}{suffix}"
    if not store.path(here).exists():
        _at_one_thread(lambda: generate_data(store=store, config=config, name=here))
    generate_data(store=store, config=config, name=there, scheduler=cluster.scheduler_address)
    with store.open(here) as local, store.open(there) as remote:
        assert list(remote["trajectory"].values) == [0, 1, 2] and set(remote.data_vars) == set(local.data_vars)
        for name in local.data_vars:
            if name == "spectrum" and suffix == ".zarr":
                assert np.allclose(local[name].values, remote[name].values, rtol=1e-6, atol=0)
            else:
                assert np.array_equal(local[name].values, remote[name].values), name
        assert np.array_equal(local["time"].values, remote["time"].values)
        assert remote.attrs == local.attrs
    assert not list(store.root.glob(".*.tmp"))  # the temporary store was moved into place


def _square(*, x: int) -> int:
    if x < 0:
        raise EngineError(f"x = {x} is negative")
    return x * x


def test_parts_come_back_in_order_and_a_failing_part_fails_the_request(cluster):
    arrived, events = [], []
    parts = [{"x": x} for x in range(5)]
    assert map_parts(_square, parts, address=cluster.scheduler_address, on_result=lambda i, r: arrived.append(i),
                     progress=events.append) == [0, 1, 4, 9, 16]
    assert sorted(arrived) == list(range(5))
    assert [(e["step"], e["steps"]) for e in events] == [(k, 5) for k in range(1, 6)]
    assert map_parts(_square, parts, address=None) == [0, 1, 4, 9, 16]
    with pytest.raises(EngineError, match="x = -1 is negative"):
        map_parts(_square, [{"x": 2}, {"x": -1}], address=cluster.scheduler_address)


def test_the_scheduler_comes_from_the_flag_or_the_environment(monkeypatch):
    monkeypatch.delenv(SCHEDULER_VARIABLE, raising=False)
    assert scheduler_address(None) is None
    monkeypatch.setenv(SCHEDULER_VARIABLE, "tcp://10.0.0.5:8786")
    assert scheduler_address(None) == "tcp://10.0.0.5:8786"
    assert scheduler_address("tcp://127.0.0.1:9000") == "tcp://127.0.0.1:9000"
    with pytest.raises(EngineError, match="needs a protocol, e.g. tcp://10.0.0.5:8786"):
        scheduler_address("10.0.0.5:8786")


def test_the_jobs_tab_checks_the_scheduler_and_links_its_dashboard(cluster, store):
    """The dashboard's setting: a bad address is refused at once, a live one gives the cluster's dashboard link."""
    settings = ClusterConfig(scheduler="127.0.0.1:8786")
    view = JobsView(JobManager(), store, settings)
    view.check_cluster()
    assert "needs a protocol" in view.cluster_status.object
    settings.scheduler = cluster.scheduler_address
    view.check_cluster()
    deadline = time.monotonic() + 20
    while "cluster dashboard" not in view.cluster_status.object and time.monotonic() < deadline:
        time.sleep(0.1)
        view.refresh()
    assert f"Rollouts run on **{cluster.scheduler_address}**" in view.cluster_status.object
