import math

import torch

from engine.config import Lorenz96Config
from engine.data.lorenz96 import rk4_step, simulate_lorenz96, tendencies


def test_advection_and_coupling_conserve_energy():
    # d/dt ½(ΣX² + ΣY²) = −ΣX² + F ΣX − c ΣY²: advection and the h-coupling cancel exactly
    c = Lorenz96Config()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 32, generator=g, dtype=torch.float64) * 5
    y = torch.randn(3, 128, generator=g, dtype=torch.float64)
    dx, dy = tendencies(x, y, c)
    rate = (x * dx).sum(-1) + (y * dy).sum(-1)
    expected = -(x**2).sum(-1) + c.forcing * x.sum(-1) - c.time_scale * (y**2).sum(-1)
    assert torch.allclose(rate, expected, rtol=1e-12, atol=1e-9)


def test_rk4_is_fourth_order():
    c0 = Lorenz96Config(slow=8, fast_per_slow=2)
    g = torch.Generator().manual_seed(1)
    x0 = 10 + torch.randn(1, 8, generator=g, dtype=torch.float64)
    y0 = torch.randn(1, 16, generator=g, dtype=torch.float64)

    def run(dt):
        c = Lorenz96Config(slow=8, fast_per_slow=2, dt=dt)
        x, y = x0, y0
        for _ in range(round(0.08 / dt)):
            x, y = rk4_step(x, y, c)
        return x

    reference = run(2.5e-5)
    errors = [float((run(dt) - reference).abs().max()) for dt in (2e-3, 1e-3, 5e-4)]
    rates = [math.log2(a / b) for a, b in zip(errors, errors[1:])]
    assert all(3.6 < r < 4.4 for r in rates), (errors, rates, c0.dt)


def test_simulation_dataset_is_chaotic_bounded_and_documented():
    ds = simulate_lorenz96(Lorenz96Config(snapshots=50, spin_up=2.0, trajectories=2, save_every=100))
    assert ds["slow"].dims == ("trajectory", "time", "k") and ds.sizes["k"] == 32
    assert ds["fast"].sizes["j"] == 128 and ds.attrs["forcing"] == 10.0
    slow = ds["slow"].values
    assert abs(slow).max() < 30 and slow.std() > 1.0  # a bounded, active attractor
    assert not (slow[0] == slow[1]).all()  # different initial perturbations, different trajectories


def test_cli_writes_the_dataset(tmp_path):
    import xarray as xr

    from engine.cli import main

    out = tmp_path / "l96.nc"
    assert main(["--data-dir", str(tmp_path), "data", "lorenz96", "--snapshots", "5", "--spin-up", "0",
                 "--trajectories", "1",
                 "--out", "l96.nc"]) == 0
    ds = xr.open_dataset(out, engine="h5netcdf")
    assert ds["slow"].shape == (1, 5, 32) and ds.attrs["generator"] == "engine.data.lorenz96"
