"""Stationary Gaussian random fields on an N×N periodic grid with per-mode variance ``σ²(|k|² + ℓ²)^(−s)``.

Reference: docs/science.md §1 (Chen & Vanden-Eijnden's GRF target: ℓ = 1, s = 3). Fields are white noise
coloured in Fourier space (``engine.noise.colour``), so each field is exactly Gaussian with that spectrum.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import xarray as xr

from engine.config import GRFConfig, options
from engine.data.store import provenance, spectrum_variable
from engine.errors import EngineError
from engine.noise import sample_noise
from engine.spectral import wavenumber_magnitude


def grf_power(n: int, slope: float, ell: float = 1.0, sigma: float = 1.0) -> torch.Tensor:
    """Per-mode variance ``σ²(|k|² + ℓ²)^(−s)`` on the (n, n) grid, mean mode zero."""
    k = wavenumber_magnitude(n, dtype=torch.float64)
    power = sigma**2 * (k**2 + ell**2) ** (-slope)
    power[0, 0] = 0.0
    return power


def generate_grf(config: GRFConfig) -> xr.Dataset:
    """``field(sample, y, x)`` on [0, 2π)² with its measured spectrum and provenance attrs."""
    n = config.size
    if n % 2:
        raise EngineError(f"GRF size must be even, got {n}")
    generator = torch.Generator().manual_seed(config.seed)
    fields = sample_noise(grf_power(n, config.slope, config.ell, config.sigma), config.count, generator)
    coord = np.arange(n) * (2 * math.pi / n)
    length = {"units": "1", "long_name": "position on the periodic domain [0, 2π)"}
    return xr.Dataset(
        {"field": (("sample", "y", "x"), fields.numpy(), {"long_name": "Gaussian random field", "units": "1"}),
         "spectrum": spectrum_variable(fields, "field")},
        coords={"sample": np.arange(config.count), "y": ("y", coord, length), "x": ("x", coord, length)},
        attrs=provenance("engine.data.grf", **options(config),
                         spectrum_formula="sigma^2 (|k|^2 + ell^2)^(-slope) per mode"),
    )
