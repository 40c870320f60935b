
import pytest
import torch

import engine.checkpoints
from engine.checkpoints import list_runs, load_checkpoint, save_checkpoint
from engine.config import GRFConfig, ModelConfig, NoiseConfig, SamplerConfig, ScheduleConfig, TrainingConfig
from engine.data.fields import load_fields
from engine.data.grf import generate_grf
from engine.data.io import write_dataset
from engine.errors import EngineError
from engine.generation import generate_samples, make_setup
from engine.interpolants import interpolate
from engine.noise import sample_noise
from engine.tasks.generative import GenerativeTask, loss_weights
from engine.training import Trainer


@pytest.fixture(scope="module")
def grf32(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "grf32.nc"
    write_dataset(generate_grf(GRFConfig(size=32, count=512, seed=1)), path)
    return load_fields(path)


def _task(data, noise="matched"):
    return GenerativeTask(data, NoiseConfig(kind=noise), ScheduleConfig())


def _trainer(data, out, steps, **kw):
    return Trainer(_task(data), ModelConfig(size="tiny"),
                   TrainingConfig(steps=steps, log_every=5, checkpoint_every=5, batch_size=8, **kw), out)


def test_stopped_and_resumed_training_equals_an_uninterrupted_run(grf32, tmp_path):
    straight = _trainer(grf32, tmp_path / "a", 20)
    straight.run()
    calls = iter(range(1000))
    interrupted = _trainer(grf32, tmp_path / "b", 20)
    interrupted.should_stop = lambda: next(calls) >= 9  # stops after step 10
    interrupted.run()
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 10
    resumed = _trainer(grf32, tmp_path / "b", 20)
    resumed.run()
    assert resumed.step == 20
    for p, q in zip(straight.net.parameters(), resumed.net.parameters()):
        assert torch.equal(p, q)
    for p, q in zip(straight.ema.parameters(), resumed.ema.parameters()):
        assert torch.equal(p, q)


def test_progress_events_and_checkpoint_contents(grf32, tmp_path):
    events = []
    trainer = _trainer(grf32, tmp_path, 10)
    trainer.callback = events.append
    path = trainer.run()
    progress = [e for e in events if e["kind"] == "progress"]
    assert [e["step"] for e in progress] == [5, 10]
    assert all(e["loss"] > 0 and e["steps_per_second"] > 0 for e in progress)
    state = load_checkpoint(path)
    assert state["configs"]["noise"]["kind"] == "matched" and state["data"]["n"] == 32
    assert state["data"]["spectrum"].shape == (17,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no temporaries left


def test_resume_refuses_a_different_model(grf32, tmp_path):
    _trainer(grf32, tmp_path, 5).run()
    other = Trainer(_task(grf32), ModelConfig(size="small"), TrainingConfig(steps=10), tmp_path)
    with pytest.raises(EngineError, match="another model"):
        other.run()


def test_checkpoints_reject_foreign_and_corrupt_files(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(EngineError, match="not an Emulator Studio drift checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "corrupt.pt").write_bytes(b"\x00garbage")
    with pytest.raises(EngineError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "corrupt.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": "emulator-studio/drift-v1", "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(EngineError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")  # weights_only refuses arbitrary objects
    save_checkpoint({"step": 1}, tmp_path / "ok.pt")
    assert load_checkpoint(tmp_path / "ok.pt")["step"] == 1



def _run(root, name, step):
    return save_checkpoint({"task": "forecast", "step": step, "history": [[step, 0.25]], "data": {"source": "k.nc"},
                            "configs": {"model": {"size": "tiny"}}}, root / "runs" / name / "checkpoint.pt")


def test_runs_are_listed_reading_each_checkpoint_once_per_version(tmp_path, monkeypatch):
    _run(tmp_path, "a", 10), _run(tmp_path, "b", 20)
    (tmp_path / "runs" / "broken").mkdir()
    (tmp_path / "runs" / "broken" / "checkpoint.pt").write_bytes(b"\x00garbage")
    reads = []
    monkeypatch.setattr(engine.checkpoints, "load_checkpoint", lambda path: reads.append(path) or load_checkpoint(path))
    first = list_runs(tmp_path)
    assert [(row["run"], row["step"], row["task"], row["data"]) for row in first] == [("a", 10, "forecast", "k.nc"),
                                                                                      ("b", 20, "forecast", "k.nc")]
    assert first[0]["path"] == "runs/a/checkpoint.pt" and first[0]["loss"] == 0.25  # relative, never a machine path
    assert list_runs(tmp_path) == first and len(reads) == 3  # listed again: nothing re-read (the broken one too)
    _run(tmp_path, "b", 30)  # a training step rewrote b
    assert [row["step"] for row in list_runs(tmp_path)] == [10, 30] and len(reads) == 4

@pytest.mark.slow
def test_tiny_unet_trained_briefly_samples_as_well_as_the_exact_drift(grf32, tmp_path):
    """350 steps at batch 32 (≈ 1 minute on 2 CPU cores; bounded by steps, not seconds): spectral error within 2×
    of the exact drift's at equal NFE."""
    training = TrainingConfig(steps=350, batch_size=32, log_every=50)
    trainer = Trainer(_task(grf32), ModelConfig(size="tiny"), training, tmp_path)
    checkpoint = trainer.run()
    noise, schedule, sampler = NoiseConfig(kind="matched"), ScheduleConfig(), SamplerConfig(steps=16, seed=5)
    exact = make_setup(ModelConfig(kind="analytic"), grf32, noise, schedule)
    trained = make_setup(ModelConfig(), grf32, noise, schedule, str(checkpoint))
    exact_result, trained_result = generate_samples(exact, sampler, 512), generate_samples(trained, sampler, 512)
    assert trained_result.nfe == exact_result.nfe == 16
    assert trained_result.errors["spectral_error"] <= 2 * exact_result.errors["spectral_error"]
    # and the network has learned the drift itself on x_t = α x0 + β x1, not just a lucky spectrum.
    # Matched noise on the linear path: b = c(t) x with c(½) = 0, so t = ½ is left out. The regression target
    # x1 − x0 has pixel variance 2 against |b|² ≈ 0.3 at t = 0.3, so 350 small batches leave a visible error.
    g = torch.Generator().manual_seed(6)
    x0, x1 = sample_noise(exact.noise_power, 64, g), grf32.fields[:64]
    for t in (0.1, 0.3, 0.8):
        xt = interpolate(exact.schedule(t), x0, x1)
        b_exact, b_net = exact.drift(t, xt), trained.drift(torch.tensor(t), xt)
        assert float((b_net - b_exact).norm() / b_exact.norm()) < 0.5, t


def test_loss_weights_emphasize_modes_where_the_noise_is_weak():
    from engine.noise import powerlaw_spectrum, white_spectrum

    white = loss_weights(white_spectrum(16), 0.25)
    assert torch.allclose(white, torch.ones_like(white))  # white noise: plain pixel L2
    steep = loss_weights(powerlaw_spectrum(16, 4.0), 0.25)
    assert steep[0, 0] == 1.0  # the mean mode, where the noise has no variance, keeps weight 1
    # (|k|^-4)^(-¼) = |k|: the mode k = 8 weighs 8 times the mode k = 1
    assert torch.allclose(steep[0, 8] / steep[0, 1], torch.tensor(8.0))
