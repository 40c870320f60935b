import math

import numpy as np
import pytest
import torch
import xarray as xr

from engine.coarse import OUProcess, coarse_grain, damping_table, surviving_wavenumber
from engine.errors import EngineError
from engine.pipelines.coarse_data import coarse_grain_dataset


def ortho_fft2(x):
    return torch.fft.fft2(x.to(torch.float64), norm="ortho")


def test_lambda_zero_is_the_identity():
    x = torch.randn(3, 16, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    smooth, noisy = coarse_grain(x, 0.0, OUProcess())
    torch.testing.assert_close(smooth, x, rtol=0, atol=1e-12)
    torch.testing.assert_close(noisy, x, rtol=0, atol=1e-12)


def test_per_mode_mean_and_variance_match_the_closed_form():
    """E x̂_λ = e^{μλ} x̂_0 and Var x̂_λ = Q_k(λ) per mode, from 4000 draws of the noise."""
    n, lam, process = 16, 0.05, OUProcess(a=0.3, b2=2.0)
    x0 = torch.randn(n, n, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    batch = x0.expand(4000, n, n)
    smooth, noisy = coarse_grain(batch, lam, process, torch.Generator().manual_seed(3))
    damping, variance = process.damping(lam, n), process.variance(lam, n)
    torch.testing.assert_close(ortho_fft2(smooth[0]), damping * ortho_fft2(x0), rtol=0, atol=1e-10)
    noise_hat = ortho_fft2(noisy - smooth)
    measured = (noise_hat.real**2 + noise_hat.imag**2).mean(0)
    torch.testing.assert_close(measured[variance > 0], variance[variance > 0], rtol=0.1, atol=0)
    mean_error = (ortho_fft2(noisy).mean(0) - damping * ortho_fft2(x0)).abs()
    assert (mean_error <= 5 * (variance / 4000).sqrt() + 1e-12).all()


def test_rates_are_the_finite_difference_laplacian_and_tend_to_minus_a_k_squared():
    process, n = OUProcess(a=0.3), 64
    mu = process.rates(n)
    assert mu[0, 0] == 0
    # small k: 4 sin²(πk/N)/h² with h = 2π/N → k²
    assert mu[0, 1].item() == pytest.approx(-0.3, rel=1e-3)
    assert mu[2, 1].item() == pytest.approx(-0.3 * 5, rel=5e-3)
    # the largest rate: a · 2 · 4/h²
    assert mu[n // 2, n // 2].item() == pytest.approx(-0.3 * 8 / (2 * math.pi / n) ** 2)


def test_large_lambda_variance_tends_to_b2_over_2mu():
    process, n = OUProcess(a=0.3, b2=2.0), 32
    mu, q = process.rates(n), process.variance(1.0, n)
    fine = mu < -20  # e^{2μλ} negligible
    torch.testing.assert_close(q[fine], (process.b2 / (2 * -mu))[fine], rtol=1e-9, atol=0)
    assert q[0, 0].item() == pytest.approx(2.0)  # b² λ at the mean mode


def test_one_dimensional_fields_for_lorenz96():
    process = OUProcess(a=0.1, b2=2.0, ndim=1)
    x = torch.randn(2000, 32, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    smooth, noisy = coarse_grain(x, 0.2, process, torch.Generator().manual_seed(5))
    xh = torch.fft.fft(x, norm="ortho")
    torch.testing.assert_close(torch.fft.fft(smooth, norm="ortho"), process.damping(0.2, 32) * xh, rtol=0, atol=1e-10)
    nh = torch.fft.fft(noisy - smooth, norm="ortho")
    torch.testing.assert_close((nh.abs() ** 2).mean(0)[1:], process.variance(0.2, 32)[1:], rtol=0.15, atol=0)


def test_fine_scales_are_removed_first():
    process, n = OUProcess(), 64
    kept = [surviving_wavenumber(lam, n, process) for lam in (0.0, 0.01, 0.1, 1.0)]
    assert kept[0] == n // 2
    assert kept == sorted(kept, reverse=True) and kept[-1] < kept[1]
    # e^{-a k² λ} = 1/2 → k = sqrt(ln 2 / (a λ)) in the continuous limit
    assert surviving_wavenumber(0.1, 256, process) == math.floor(math.sqrt(math.log(2) / (0.3 * 0.1)))
    table = damping_table([0.0, 0.1], n, process)
    assert table.dims == ("lam", "wavenumber") and np.allclose(table.sel(lam=0.0), 1.0)


def test_dataset_keeps_units_records_lambda_and_both_parts():
    values = np.random.default_rng(0).normal(3.0, 2.0, size=(2, 5, 16, 16)).astype(np.float32)
    coord = np.arange(16) * 2 * np.pi / 16
    ds = xr.Dataset({"vorticity": (("trajectory", "time", "y", "x"), values, {"units": "1/time"})},
                    coords={"time": np.arange(5) * 0.5, "y": coord, "x": coord}, attrs={"generator": "test", "seed": 7})
    out = coarse_grain_dataset(ds, variable="vorticity", lam=0.1, seed=1)
    assert out["vorticity"].dims == ds["vorticity"].dims and out["vorticity_smooth"].shape == values.shape
    assert float(out["lam"]) == 0.1 and out.attrs["lam"] == 0.1 and out.attrs["source_seed"] == 7
    assert out["vorticity"].attrs["units"] == "1/time"
    assert out["vorticity_smooth"].std() < ds["vorticity"].std()  # white-ish input: fine modes damped
    assert abs(float(out["vorticity_smooth"].mean()) - float(ds["vorticity"].mean())) < 1e-4  # k = 0 kept
    same = coarse_grain_dataset(ds, variable="vorticity", lam=0.1, seed=1)
    np.testing.assert_array_equal(out["vorticity"].values, same["vorticity"].values)


@pytest.mark.parametrize("lam", [-0.1, 1.5, float("nan")])
def test_lambda_out_of_range_is_refused(lam):
    with pytest.raises(EngineError, match="λ must lie in"):
        coarse_grain(torch.zeros(4, 4), lam, OUProcess())


def test_bad_constants_are_refused():
    with pytest.raises(EngineError, match="a ≥ 0"):
        OUProcess(a=-1.0)
