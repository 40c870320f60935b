"""Gaussian noise with a prescribed spectrum: white, power-law ``|k|^{-p}``, or matched to a dataset.

A spectrum here is the per-mode variance ``P(k) = E|x̂_k|²`` on the (n, n) FFT grid (``x̂ = fft2(x,
norm="forward")``, see ``engine.spectral``). The mean mode is always zero (``A[0, 0] = 0`` in Chen &
Vanden-Eijnden), so every noise has zero spatial mean. A noise field is white pixel noise ``w`` coloured
in Fourier space, ``x = irfft2(sqrt(N² P) · rfft2(w))``, which is exactly Gaussian and stationary with
modal variance P; colouring the *same* ``w`` with two spectra compares them on the same randomness.
"""
from __future__ import annotations

import torch

from engine.errors import EngineError
from engine.spectral import apply_mode_matrix, modal_from_shells, wavenumber_magnitude

Tensor = torch.Tensor
NOISE_KINDS = ("white", "powerlaw", "matched")


def _normalized(power: Tensor, variance: float) -> Tensor:
    """Zero the mean mode and scale so that the pixel variance ``Σ_k P(k)`` equals ``variance``."""
    power = power.clone()
    power[0, 0] = 0.0
    return power * (variance / power.sum())


def white_spectrum(n: int, variance: float = 1.0, device=None) -> Tensor:
    """Flat ``P(k) = variance / (N² − 1)`` for k ≠ 0: white noise of the given pixel variance."""
    return _normalized(torch.ones(n, n, dtype=torch.float64, device=device), variance)


def powerlaw_spectrum(n: int, exponent: float, variance: float = 1.0, device=None) -> Tensor:
    """``P(k) ∝ |k|^{-p}`` for k ≠ 0, scaled to the given pixel variance (p = 0 is white)."""
    kmag = wavenumber_magnitude(n, device, torch.float64)
    kmag[0, 0] = 1.0
    return _normalized(kmag ** (-exponent), variance)


def matched_spectrum(shell_spectrum: Tensor, n: int) -> Tensor:
    """Isotropic spectrum from a dataset's shell-mean modal variance (N_s,), spread on the (n, n) grid."""
    power = modal_from_shells(shell_spectrum.to(torch.float64), n).clone()
    power[0, 0] = 0.0
    return power


def noise_spectrum(kind: str, n: int, data_shell_spectrum: Tensor | None = None,
                   exponent: float = 2.0, device=None) -> Tensor:
    """The per-mode variance of the chosen noise, scaled to the data's pixel variance when data is given."""
    if kind not in NOISE_KINDS:
        raise EngineError(f"noise kind must be one of {', '.join(NOISE_KINDS)}, not {kind!r}")
    if kind == "matched":
        if data_shell_spectrum is None:
            raise EngineError("matched noise needs a data spectrum: pass a dataset that stores one")
        return matched_spectrum(data_shell_spectrum, n).to(device)
    variance = 1.0 if data_shell_spectrum is None else float(matched_spectrum(data_shell_spectrum, n).sum())
    if kind == "white":
        return white_spectrum(n, variance, device)
    return powerlaw_spectrum(n, exponent, variance, device)


def colour(white: Tensor, power: Tensor) -> Tensor:
    """Colour unit-variance white noise w (..., n, n) to modal variance P (n, n), or one per field (C, n, n) for w
    (..., C, n, n): ``irfft2(sqrt(N² P) rfft2(w))``."""
    n = white.shape[-1]
    amplitude = torch.sqrt(power[..., : n // 2 + 1] * n * n).to(white.dtype)
    return torch.fft.irfft2(torch.fft.rfft2(white) * amplitude, s=(n, n))


def sample_noise(power: Tensor, count: int, generator: torch.Generator | None = None,
                 dtype=torch.float32) -> Tensor:
    """``count`` stationary Gaussian fields with modal variance P (n, n) → (count, n, n)."""
    n = power.shape[-1]
    white = torch.randn(count, n, n, generator=generator, device=power.device, dtype=dtype)
    return colour(white, power)


def noise_generator(seed: int, device=None) -> torch.Generator:
    """The generator of a sampler's noise for a seed: its own stream, so sampler seed 0 never reproduces the
    white noise that made a dataset with seed 0 (which would start the sampler on a data field)."""
    return torch.Generator(device=device).manual_seed((seed + 0x2545F4914F6CDD1D) % 2**63)


def sample_cross_noise(cross: Tensor, count: int, generator: torch.Generator | None = None,
                       dtype=torch.float32) -> Tensor:
    """``count`` stationary Gaussian states of C fields whose modal cross-spectral matrix is ``cross`` (n, n/2 + 1,
    C, C), Hermitian positive semi-definite (``engine.spectral.modal_cross_spectrum``): white noise per field
    coloured mode by mode, ``x̂_k = L_k ŵ_k / N²`` with ``L_k L_kᴴ = N² S_k`` (correlated fields: matched noise of a
    multi-field dataset) → (count, C, n, n)."""
    n, channels = cross.shape[0], cross.shape[-1]
    white = torch.randn(count, channels, n, n, generator=generator, device=cross.device, dtype=dtype)
    return colour_across(white, cross)


def colour_across(white: Tensor, cross: Tensor) -> Tensor:
    """Colour unit white noise (..., C, n, n) to the cross-spectral matrix ``cross`` (n, n/2 + 1, C, C)."""
    return apply_mode_matrix(white, cross_colouring(cross))


def cross_colouring(cross: Tensor) -> Tensor:
    """The per-mode matrix ``N L_k`` (``L_k L_kᴴ = S_k``, ``psd_factor``) that ``apply_mode_matrix`` turns unit
    white noise into noise of the cross-spectral matrix ``cross`` (n, n/2 + 1, C, C) with: made once, applied at
    every draw."""
    return psd_factor(cross) * cross.shape[0]


def cross_noise_spectra(kind: str, n: int, cross_shells: Tensor, exponent: float = 2.0) -> Tensor:
    """The modal cross-spectral matrix of the noise for states of C fields (n, n/2 + 1, C, C), float64, from the
    data's shell cross-spectra (C, C, N_s): matched noise is the data's (fields correlated as the data's are, no
    mean mode); white and power-law noise are independent per field, each scaled to its field's pixel variance."""
    channels = cross_shells.shape[0]
    if kind == "matched":
        grid = torch.stack([torch.stack([matched_spectrum(cross_shells[a, b], n) for b in range(channels)], -1)
                            for a in range(channels)], -2)
        return grid[:, : n // 2 + 1]
    fields = [noise_spectrum(kind, n, cross_shells[c, c], exponent)[:, : n // 2 + 1] for c in range(channels)]
    return torch.diag_embed(torch.stack(fields, -1))


def psd_factor(cross: Tensor) -> Tensor:
    """A factor L with ``L Lᴴ = S`` per mode of a Hermitian positive semi-definite S (..., C, C): from its
    eigendecomposition, so singular modes (the mean mode, perfectly coherent fields) are allowed."""
    values, vectors = torch.linalg.eigh(cross.to(torch.complex128))
    return vectors * values.clamp(min=0).sqrt()[..., None, :]
