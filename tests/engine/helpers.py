"""Shared test fixtures: Gaussian random field spectra with closed forms."""
import torch

from engine.spectral import wavenumber_magnitude


def grf_power(n: int, slope: float = 3.0, sigma: float = 1.0, ell: float = 1.0) -> torch.Tensor:
    """Modal variance ``σ²(|k|² + ℓ²)^(−s)`` with a zero mean mode (science.md §1's GRF)."""
    k = wavenumber_magnitude(n, dtype=torch.float64)
    power = sigma**2 * (k**2 + ell**2) ** (-slope)
    power[0, 0] = 0.0
    return power
