"""Data-parallel training (engine.distributed): two gloo ranks started by torchrun against one process on the
same global batch."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.checkpoints import load_checkpoint
from engine.cli import main
from engine.config import GRFConfig, ModelConfig, NoiseConfig, ScheduleConfig, TrainingConfig
from engine.data.fields import load_fields
from engine.data.grf import generate_grf
from engine.data.io import write_dataset
from engine.distributed import World, world_from_environment
from engine.errors import EngineError
from engine.models import build_unet
from engine.tasks.generative import GenerativeTask
from engine.training import Trainer

STEPS = 4


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """A tiny generator trained for STEPS steps at global batch 8 by two torchrun processes on gloo."""
    folder = tmp_path_factory.mktemp("ddp")
    data = folder / "grf16.nc"
    write_dataset(generate_grf(GRFConfig(size=16, count=64, seed=3)), data)
    out = folder / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               str(Path(__file__).with_name("ddp_rank.py")), str(data), str(out), str(STEPS)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=environment, start_new_session=True)
    try:
        output = launcher.communicate(timeout=90)[0]
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)  # torchrun and both ranks
    assert launcher.returncode == 0, output[-3000:]
    return data, out, [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


def _single_process(data: Path, out: Path, steps: int) -> Trainer:
    task = GenerativeTask(load_fields(data), NoiseConfig(), ScheduleConfig())
    trainer = Trainer(task, ModelConfig(size="tiny"),
                      TrainingConfig(steps=steps, batch_size=8, log_every=1, device="cpu"), out)
    trainer.run()
    return trainer


def test_both_gloo_ranks_hold_identical_weights_after_every_step(two_ranks):
    _, _, (rank0, rank1) = two_ranks
    assert rank0["size"] == rank1["size"] == 2 and rank0["backend"] == "gloo"
    assert rank0["parameters"].shape[0] == STEPS
    assert torch.equal(rank0["parameters"], rank1["parameters"])  # bit for bit, step by step
    assert rank0["history"] == rank1["history"]  # the logged loss is the global batch's on both


def test_two_ranks_match_one_process_on_the_same_global_batch(two_ranks, tmp_path):
    """The first step's loss to 1e-6 (same weights, same batch), the next ones to 2e-3 relative: AdamW's first
    updates are ≈ ±lr wherever |g| ≫ ε, so the 1e-6-relative differences of float sums in the ~all parameters
    whose gradient is near zero at initialization (a zero-initialized output layer) flip some updates' signs."""
    data, out, (rank0, _) = two_ranks
    single = _single_process(data, tmp_path / "one", STEPS)
    losses = torch.tensor([loss for _, loss in single.history])
    distributed = torch.tensor([loss for _, loss in rank0["history"]])
    assert torch.allclose(distributed[0], losses[0], rtol=1e-6, atol=0)
    assert torch.allclose(distributed, losses, rtol=2e-3, atol=0)
    assert load_checkpoint(out / "checkpoint.pt")["step"] == STEPS  # rank 0 wrote the usual checkpoint


def test_the_shares_gradients_average_to_the_global_batchs(tmp_path):
    """What DDP's all-reduce computes, in one process: mean of the two shares' gradients = the gradient of the
    global batch's loss, within 1e-5 relative (measured 8.5e-7)."""
    data = tmp_path / "g.nc"
    write_dataset(generate_grf(GRFConfig(size=16, count=32, seed=2)), data)
    task = GenerativeTask(load_fields(data), NoiseConfig(), ScheduleConfig())
    task.to(torch.device("cpu"))
    torch.manual_seed(0)
    net = build_unet("tiny", in_channels=1, ndim=2)
    drawn = task.draw(8, torch.Generator().manual_seed(0))

    def gradient(batch: tuple) -> torch.Tensor:
        net.zero_grad()
        task.loss(net, batch).backward()
        return torch.cat([p.grad.flatten() for p in net.parameters()])

    whole = gradient(drawn)
    shares = (gradient(World(0, 2).share(drawn)) + gradient(World(1, 2).share(drawn))) / 2
    assert (whole - shares).norm() <= 1e-5 * whole.norm()


def test_a_run_of_two_ranks_resumes_in_one_process(two_ranks, tmp_path):
    """The checkpoint format and the batch stream do not depend on the world size: 4 steps on two ranks then 2 on
    one draw exactly the batches of 6 steps on one (same generator state) and reach its loss within 1%."""
    data, out, _ = two_ranks
    resumed = _single_process(data, out, STEPS + 2)
    straight = _single_process(data, tmp_path / "straight", STEPS + 2)
    assert resumed.step == STEPS + 2 and [step for step, _ in resumed.history] == list(range(1, STEPS + 3))
    assert torch.equal(resumed.generator.get_state(), straight.generator.get_state())
    assert abs(resumed.history[-1][1] - straight.history[-1][1]) <= 0.01 * straight.history[-1][1]


def test_the_world_comes_from_torchruns_variables(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert world_from_environment() == World(3, 4, 1)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(EngineError, match="RANK 4 does not fit WORLD_SIZE 4"):
        world_from_environment()


def test_a_global_batch_must_split_evenly_over_the_ranks(tmp_path):
    data = tmp_path / "g.nc"
    write_dataset(generate_grf(GRFConfig(size=16, count=8, seed=0)), data)
    task = GenerativeTask(load_fields(data), NoiseConfig(), ScheduleConfig())
    with pytest.raises(EngineError, match="does not split evenly over 3 processes"):
        Trainer(task, ModelConfig(size="tiny"), TrainingConfig(batch_size=8), tmp_path / "run", world=World(0, 3))
    shares = World(1, 2).share((torch.arange(8), None))
    assert torch.equal(shares[0], torch.arange(4, 8)) and shares[1] is None


def test_the_command_line_says_the_world_size_when_training_starts(tmp_path, capsys):
    write_dataset(generate_grf(GRFConfig(size=16, count=8, seed=0)), tmp_path / "g.nc")
    code = main(["--data-dir", str(tmp_path), "train", "--data", "g.nc", "--out", "runs/r", "--model-size", "tiny",
                 "--steps", "2", "--batch-size", "4", "--device", "cpu"])
    assert code == 0
    assert "training on cpu, world size 1\n" in capsys.readouterr().out
