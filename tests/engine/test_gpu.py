"""The CUDA paths: no host syncs in the hot loops (``torch.cuda.set_sync_debug_mode("error")`` raises on any),
bf16 training, and the Kolmogorov solver on the GPU. Every CUDA test skips on a machine without one (CI)."""
from pathlib import Path

import pytest
import torch

from engine.config import (
    ForecastSamplerConfig,
    GRFConfig,
    ModelConfig,
    NoiseConfig,
    SamplerConfig,
    ScheduleConfig,
    TrainingConfig,
)
from engine.data.fields import load_fields
from engine.data.grf import generate_grf
from engine.data.io import write_dataset
from engine.data.kolmogorov import KolmogorovFlow, crank_nicolson_rk4, random_vorticity
from engine.forecast import load_forecaster
from engine.generation import generate_samples, make_setup
from engine.pdd import load_pdd
from engine.tasks.generative import GenerativeTask
from engine.training import Trainer

ASSETS = Path(__file__).parents[2] / "assets" / "checkpoints"
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def grf(tmp_path_factory):
    path = tmp_path_factory.mktemp("gpu") / "grf16.nc"
    write_dataset(generate_grf(GRFConfig(size=16, count=32, seed=0)), path)
    return load_fields(path)


def _trainer(grf, out, device: str, precision: str = "auto") -> Trainer:
    task = GenerativeTask(grf, NoiseConfig(), ScheduleConfig())
    training = TrainingConfig(steps=10, batch_size=8, log_every=5, device=device, precision=precision)
    return Trainer(task, ModelConfig(size="tiny"), training, out)


def test_bf16_autocast_trains_on_cpu_when_asked_and_stays_close_to_float32(grf, tmp_path):
    """Off by default on CPU; asked for, the loss after 10 steps is within 5% of float32's."""
    full = _trainer(grf, tmp_path / "f32", "cpu")
    full.run()
    half = _trainer(grf, tmp_path / "bf16", "cpu", precision="bfloat16")
    half.run()
    assert abs(half.history[-1][1] - full.history[-1][1]) <= 0.05 * full.history[-1][1]


def test_a_forecast_in_bf16_on_cpu_stays_close_to_float32():
    """The sampler's precision option: bf16 autocast changes one SI step by < 5% of the state's RMS."""
    forecaster = load_forecaster(ASSETS / "si-forecaster.pt")
    state = 3 * torch.randn(2, forecaster.n, forecaster.n, generator=torch.Generator().manual_seed(0))
    steps = [forecaster.step(state, ForecastSamplerConfig(method="pf_ode", steps=2, precision=precision))
             for precision in ("float32", "bfloat16")]
    assert not torch.equal(*steps)
    assert float((steps[0] - steps[1]).pow(2).mean().sqrt()) < 0.05 * float(steps[0].pow(2).mean().sqrt())
    assert set(forecaster.fast) == {("float32", False), ("bfloat16", False)}


def test_generation_in_bf16_on_cpu_stays_close_to_float32(tmp_path):
    """The generation sampler's precision option: the shipped generator's 4-step samples from the same noise move by
    < 5% of their RMS in bf16; float32 (auto on CPU) is what sampling always did."""
    write_dataset(generate_grf(GRFConfig(size=64, count=8, seed=0)), tmp_path / "grf64.nc")
    data = load_fields(tmp_path / "grf64.nc")
    samples = {}
    for precision in ("auto", "float32", "bfloat16"):
        sampler = SamplerConfig(steps=4, precision=precision)
        setup = make_setup(ModelConfig(), data, NoiseConfig(kind="matched"), ScheduleConfig(),
                           str(ASSETS / "grf-generator.pt"), sampler=sampler)
        samples[precision] = generate_samples(setup, sampler, 4, torch.device("cpu")).samples
    assert torch.equal(samples["auto"], samples["float32"])
    rms = float(samples["float32"].pow(2).mean().sqrt())
    assert 0 < float((samples["float32"] - samples["bfloat16"]).pow(2).mean().sqrt()) < 0.05 * rms


def test_a_pdd_predictor_in_bf16_on_cpu_stays_close_to_float32():
    """PDD's precision option (super-resolution and simulation at fixed λ): F_θ moves by < 5% of its RMS in bf16."""
    x = torch.randn(2, 8, 64, 64, generator=torch.Generator().manual_seed(0))
    increments = [load_pdd(ASSETS / "pdd.pt", "cpu", precision).predict(x, 0.1).detach()
                  for precision in ("float32", "bfloat16")]
    rms = float(increments[0].pow(2).mean().sqrt())
    assert 0 < float((increments[0] - increments[1]).pow(2).mean().sqrt()) < 0.05 * rms


@cuda
def test_a_training_step_on_cuda_never_syncs_with_the_host(grf, tmp_path):
    trainer = _trainer(grf, tmp_path, "cuda")
    model = trainer.prepared_model()
    trainer.train_step(model)  # warm-up: lazy CUDA initialisation may sync once
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            loss = trainer.train_step(model)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(loss).item()


@cuda
def test_a_forecast_step_on_cuda_never_syncs_with_the_host():
    forecaster = load_forecaster(ASSETS / "si-forecaster.pt", "cuda")
    state = torch.randn(4, forecaster.n, forecaster.n, device="cuda")
    generator = torch.Generator("cuda").manual_seed(0)
    sampler = ForecastSamplerConfig(method="si_em", steps=4)
    forecaster.step(state, sampler, generator)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            state = forecaster.step(state, sampler, generator)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(state).all().item()


@cuda
def test_the_kolmogorov_solver_steps_on_cuda_without_syncs_and_matches_the_cpu():
    fields = []
    for device in ("cpu", "cuda"):
        eq = KolmogorovFlow(64, 1e-3, 0.1, 4, device)
        step = crank_nicolson_rk4(eq.explicit_terms, eq.implicit_terms, eq.implicit_solve, 5e-3, eq.linear)
        state = torch.fft.rfft2(random_vorticity(64, 2, torch.Generator().manual_seed(0)).to(device))
        if device == "cuda":
            torch.cuda.set_sync_debug_mode("error")
        try:
            for _ in range(10):
                state = step(state)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        fields.append(torch.fft.irfft2(state).cpu())
    assert torch.allclose(fields[0], fields[1], rtol=0, atol=1e-9 * float(fields[0].abs().max()))
