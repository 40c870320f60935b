import pytest
import torch

from engine.config import ForecastConfig, ForecastSamplerConfig, KolmogorovConfig, ModelConfig, TrainingConfig
from engine.data.kolmogorov import simulate_kolmogorov
from engine.data.sequences import load_trajectories
from engine.data.store import write_dataset
from engine.diagnostics import vrmse
from engine.errors import EngineError
from engine.forecast import Forecaster, load_forecaster, si_interpolant
from engine.tasks.forecast import ForecastTask
from engine.training import Trainer

N = 16


class ExactShiftDrift(torch.nn.Module):
    """The exact SI drift when y = x + d: ``b = d − (I − x − t d)/(1 − t)`` (z solved from I)."""

    def __init__(self, shift):
        super().__init__()
        self.shift = torch.nn.Parameter(shift, requires_grad=False)

    def forward(self, inputs, t):
        x, interpolant = inputs[:, 0], inputs[:, 1]
        tb = t[:, None, None]
        return (self.shift - (interpolant - x - tb * self.shift) / (1 - tb))[:, None]


def test_interpolant_ends_and_target():
    g = torch.Generator().manual_seed(0)
    x, y, z = (torch.randn(3, N, N, generator=g) for _ in range(3))
    i0, _ = si_interpolant(x, y, z, torch.zeros(3), 1.0)
    i1, target1 = si_interpolant(x, y, z, torch.ones(3), 1.0)
    torch.testing.assert_close(i0, x)
    torch.testing.assert_close(i1, y)
    torch.testing.assert_close(target1, y - x - z)


@pytest.mark.parametrize("method", ["pf_ode", "si_em", "si_e"])
def test_every_sampler_lands_on_a_deterministic_target_with_the_exact_drift(method):
    g = torch.Generator().manual_seed(1)
    x, shift = torch.randn(4, N, N, generator=g), torch.randn(N, N, generator=g)
    forecaster = Forecaster(ExactShiftDrift(shift), "forecast", sigma=1.0, mean=0.0, std=1.0, dt=1.0)
    y = forecaster.step(x, ForecastSamplerConfig(method=method, steps=20, eps=1.0), torch.Generator().manual_seed(2))
    # the SDE's last Euler step leaves noise σ h^1.5 ≈ 0.011; the ODE and drop-noise paths are exact up to O(h²)
    tolerance = 0.06 if method == "si_em" else 1e-3
    assert (y - (x + shift)).abs().max() < tolerance


def test_sde_with_zero_diffusion_equals_the_ode():
    g = torch.Generator().manual_seed(3)
    x, shift = torch.randn(2, N, N, generator=g), torch.randn(N, N, generator=g)
    forecaster = Forecaster(ExactShiftDrift(shift), "forecast", 1.0, 0.0, 1.0, 1.0)
    ode = forecaster.step(x, ForecastSamplerConfig(method="pf_ode", steps=5))
    sde = forecaster.step(x, ForecastSamplerConfig(method="si_em", steps=5, eps=0.0), torch.Generator().manual_seed(9))
    assert torch.equal(ode, sde)
    noisy = forecaster.step(x, ForecastSamplerConfig(method="si_em", steps=5, eps=1.0),
                            torch.Generator().manual_seed(9))
    assert not torch.equal(ode, noisy)


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    folder = tmp_path_factory.mktemp("flow")
    config = KolmogorovConfig(size=32, trajectories=5, snapshots=48, spin_up=20.0, save_interval=0.5, device="cpu")
    return write_dataset(simulate_kolmogorov(config), folder / "flow.nc")


def test_trajectories_are_normalized_and_checked(flow, tmp_path):
    data = load_trajectories(flow)
    assert data.fields.shape == (5, 48, 32, 32) and data.dt == pytest.approx(0.5)
    assert abs(float(data.fields.mean())) < 1e-5 and float(data.fields.std()) == pytest.approx(1.0, rel=1e-4)
    with pytest.raises(EngineError, match="too short"):
        ForecastTask(load_trajectories(flow), ForecastConfig(task="pointwise", unroll=32, lead=2))


@pytest.mark.slow
@pytest.mark.parametrize("task", ["forecast", "pointwise"])
def test_a_briefly_trained_emulator_beats_persistence_at_one_step(flow, tmp_path, task):
    data = load_trajectories(flow)
    train = type(data)(data.fields[:4], data.mean, data.std, data.dt, data.variable)
    checkpoint = Trainer(ForecastTask(train, ForecastConfig(task=task)), ModelConfig(size="tiny"),
                         TrainingConfig(steps=300, batch_size=16, lr=2e-3, log_every=100), tmp_path).run()
    forecaster = load_forecaster(checkpoint)
    test = data.denormalize(data.fields[4])  # a held-out trajectory, physical units
    x, y = test[:-1], test[1:]
    predicted = forecaster.step(x, ForecastSamplerConfig(method="pf_ode", steps=4))
    persistence = vrmse(x[None], y[None]).mean()
    emulator = vrmse(predicted[None], y[None]).mean()
    assert emulator < 0.8 * persistence, (float(emulator), float(persistence))
