import math

import torch

from engine.spectral import (
    BANDS,
    band_edges,
    band_log_errors,
    band_masks,
    energy_spectra,
    isotropic_modal_spectrum,
    lowpass,
    radial_spectrum,
    shell_counts,
    spectral_errors,
)


def _mode(n, kx, ky, amplitude=1.0):
    grid = torch.arange(n, dtype=torch.float64) * 2 * math.pi / n
    y, x = torch.meshgrid(grid, grid, indexing="ij")
    return amplitude * torch.cos(kx * x + ky * y)


def test_single_fourier_mode_lands_in_its_shell_with_exact_power():
    # cos(k·x) has x̂ = ½ at ±k, so the shell sum is 2 · ¼ = ½ · amplitude².
    n = 32
    s = radial_spectrum(_mode(n, 3, 4, amplitude=2.0))
    assert torch.isclose(s[5], torch.tensor(2.0, dtype=torch.float64))
    assert float(s.sum() - s[5]) < 1e-20


def test_parseval_shell_sums_add_up_to_pixel_variance():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 16, 16, generator=g, dtype=torch.float64)
    x = x - x.mean(dim=(-1, -2), keepdim=True)
    total = radial_spectrum(x).sum()
    # corner modes beyond shell N/2 are excluded, so compare with a low-passed copy
    assert torch.isclose(total, (lowpass(x, 8.5) ** 2).mean(), rtol=1e-10)


def test_energy_spectrum_of_a_single_vorticity_mode():
    # ω = cos(4y): E(k=4) = ½ · (½)² · 2 / 4² per shell sum of |ω̂|²/(2k²) → 0.5/(2·16)
    n = 32
    e = energy_spectra(_mode(n, 0, 4))
    assert torch.isclose(e[4], torch.tensor(0.5 / 32, dtype=torch.float64))


def test_band_edges_match_paper_at_64():
    edges = band_edges(64)
    assert [round(e, 1) for e in edges] == [1.0, 3.2, 10.1, 32.0]


def test_band_log_errors_skip_k_0_and_the_shells_the_reference_does_not_hold():
    s = torch.rand(33, dtype=torch.float64) + 0.1
    scaled = s * math.e
    scaled[0] = 1e6 * s[0]  # the mean mode counts in no error
    errors = band_log_errors(scaled, s)
    assert all(math.isclose(errors[key], 1.0, rel_tol=1e-12) for key in ("all", "low", "mid", "high"))
    emptied = s.clone()
    emptied[30:] = 0.0  # a dealiased solver's empty shells past √2 N/3
    assert math.isclose(band_log_errors(s * math.e, emptied)["high"], 1.0, rel_tol=1e-12)
    assert set(band_masks(64)) == set(BANDS) and not any(mask[0] for mask in band_masks(64).values())


def test_spectral_errors_zero_for_identical_and_log_for_scaled():
    s = torch.rand(33, dtype=torch.float64) + 0.1
    assert spectral_errors(s, s, 64)["spectral_error"] == 0.0
    errs = spectral_errors(s * math.e, s, 64)
    assert math.isclose(errs["spectral_error"], 1.0, rel_tol=1e-12)
    assert math.isclose(errs["high_band_error"], 1.0, rel_tol=1e-12)


def test_shell_counts_and_isotropic_spectrum():
    counts = shell_counts(16)
    assert counts[0] == 1 and counts[1] == 8  # (±1,0), (0,±1) and the diagonals (√2 < 1.5)
    iso = isotropic_modal_spectrum(_mode(16, 0, 2))
    assert torch.isclose(iso[2] * counts[2], torch.tensor(0.5, dtype=torch.float64))
