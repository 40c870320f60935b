"""Spectral toolkit for doubly periodic N×N fields.

Conventions (used everywhere in the engine):
- ``x̂ = fft2(x, norm="forward")``, so a field's modal variance ``P(k) = E|x̂_k|²`` does not depend on N
  for a smooth field, and the pixel variance is ``Σ_k P(k)``.
- Integer wavenumbers ``k_x, k_y ∈ {-N/2, …, N/2-1}``; ``|k| = sqrt(k_x² + k_y²)``.
- Radial spectra are shell *sums* over shells with edges 0.5, 1.5, …, N/2 + 0.5 (shell k holds the modes
  with ``round(|k|) = k``), averaged over every leading (batch) dimension, as in Chen & Vanden-Eijnden.
"""
from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


def wavenumbers(n: int, device=None, dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """Integer wavenumber grids ``(k_y, k_x)`` of shape (n, n) in FFT order."""
    k = torch.fft.fftfreq(n, d=1.0 / n, device=device, dtype=dtype)
    return torch.meshgrid(k, k, indexing="ij")


def wavenumber_magnitude(n: int, device=None, dtype=torch.float32) -> Tensor:
    """``|k|`` on the full (n, n) FFT grid."""
    ky, kx = wavenumbers(n, device, dtype)
    return torch.sqrt(kx**2 + ky**2)


def rfft_wavenumbers(n: int, device=None, dtype=torch.float64) -> tuple[Tensor, Tensor]:
    """Integer ``(k_y, k_x)`` on the rfft2 half-grid (n, n/2 + 1)."""
    ky = torch.fft.fftfreq(n, d=1.0 / n, device=device, dtype=dtype)[:, None]
    kx = torch.fft.rfftfreq(n, d=1.0 / n, device=device, dtype=dtype)[None, :]
    return ky.expand(n, n // 2 + 1), kx.expand(n, n // 2 + 1)


def two_thirds_dealias(ky: Tensor, kx: Tensor, n: int) -> Tensor:
    """The 2/3 rule on integer wavenumbers: 1 where |k_x| and |k_y| are below ⅔ of N/2, else 0 (``ky``'s dtype)."""
    kmax = n // 2
    return ((kx.abs() < 2 * kmax / 3) & (ky.abs() < 2 * kmax / 3)).to(ky.dtype)


def shell_index(n: int, device=None) -> Tensor:
    """Shell of each mode, ``round(|k|)``, clipped to N/2 + 1 for the corner modes beyond the last shell."""
    kmag = wavenumber_magnitude(n, device, torch.float64)
    return torch.clamp(torch.round(kmag), max=n // 2 + 1).long()


def shell_counts(n: int, device=None) -> Tensor:
    """Number of modes in each shell 0..N/2, shape (N/2 + 1,)."""
    return torch.bincount(shell_index(n, device).flatten(), minlength=n // 2 + 2)[: n // 2 + 1]


def modal_power(x: Tensor) -> Tensor:
    """Modal variance ``|x̂_k|²`` averaged over leading dims. x: (..., n, n) → (n, n), float64."""
    xh = torch.fft.fft2(x.to(torch.float64), norm="forward")
    power = xh.real**2 + xh.imag**2
    return power.reshape(-1, *power.shape[-2:]).mean(0)


def modal_cross_spectrum(x: Tensor) -> Tensor:
    """The modal cross-spectral matrix ``S_ab(k) = E[x̂_a(k) conj(x̂_b(k))]`` of states of C fields, averaged over
    leading dims, on the rfft2 half-grid: (..., C, n, n) → (n, n/2 + 1, C, C) complex128 (Hermitian in a, b;
    its diagonal is each field's ``modal_power``)."""
    xh = torch.fft.rfft2(x.to(torch.float64), norm="forward")
    xh = xh.reshape(-1, *xh.shape[-3:]).permute(0, 2, 3, 1)  # (samples, n, n/2 + 1, C)
    return torch.einsum("skma,skmb->kmab", xh, xh.conj()) / xh.shape[0]


def isotropic_cross_spectrum(x: Tensor) -> Tensor:
    """Shell-mean real cross-spectra ``S_ab(k) = Re E[x̂_a conj x̂_b]`` of states of C fields: (..., C, n, n) →
    (C, C, N/2 + 1) float64; its diagonal is each field's ``isotropic_modal_spectrum`` (the imaginary part of an
    isotropic, reflection-symmetric pair's cross-spectrum vanishes on average)."""
    n = x.shape[-1]
    xh = torch.fft.fft2(x.to(torch.float64), norm="forward")
    xh = xh.reshape(-1, *xh.shape[-3:])
    cross = torch.einsum("saij,sbij->abij", xh, xh.conj()).real / xh.shape[0]
    return shell_sum(cross) / shell_counts(n, x.device).clamp(min=1)


def shell_coherence(cross_shells: Tensor) -> Tensor:
    """Coherence ``ρ_ab(k) = S_ab / √(S_aa S_bb)`` of shell cross-spectra (C, C, N_s); 0 where a field is empty."""
    power = torch.diagonal(cross_shells, dim1=0, dim2=1).T  # (C, N_s)
    norm = torch.sqrt(power[:, None] * power[None])
    return torch.where(norm > 0, cross_shells / norm.clamp(min=torch.finfo(torch.float64).tiny), 0.0)


def coherence_error(gen_shells: Tensor, ref_shells: Tensor) -> float:
    """Mean ``|ρ_gen − ρ_ref|`` over the field pairs a < b and the shells k ≥ 1 the reference holds in both
    fields: how far generated states are from the data's correlation across fields, scale by scale."""
    channels = ref_shells.shape[0]
    power = torch.diagonal(ref_shells, dim1=0, dim2=1).T
    held = held_shells(power)
    held[:, 0] = False
    gen, ref = shell_coherence(gen_shells.to(torch.float64)), shell_coherence(ref_shells.to(torch.float64))
    gaps = [(gen[a, b] - ref[a, b]).abs()[held[a] & held[b]] for a in range(channels) for b in range(a + 1, channels)]
    return float(torch.cat(gaps).mean())


def apply_mode_matrix(x: Tensor, matrix: Tensor) -> Tensor:
    """``x̂_k ↦ M_k x̂_k`` for states (..., C, n, n) and a matrix per mode on the rfft2 half-grid (n, n/2 + 1, C, C),
    in float64 (x's dtype out)."""
    n = x.shape[-1]
    modes = torch.fft.rfft2(x.to(torch.float64))
    mixed = torch.einsum("kmab,...bkm->...akm", matrix.to(modes.dtype), modes)
    return torch.fft.irfft2(mixed, s=(n, n)).to(x.dtype)


def shell_sum(field2d: Tensor) -> Tensor:
    """Sum a per-mode quantity (..., n, n) over shells 0..N/2 → (..., N/2 + 1)."""
    n = field2d.shape[-1]
    idx = shell_index(n, field2d.device).flatten()
    flat = field2d.reshape(-1, n * n)
    out = torch.zeros(flat.shape[0], n // 2 + 2, dtype=field2d.dtype, device=field2d.device)
    out.index_add_(1, idx, flat)
    return out[:, : n // 2 + 1].reshape(*field2d.shape[:-2], n // 2 + 1)


def radial_spectrum(x: Tensor) -> Tensor:
    """Radially summed power spectrum ``S(k) = Σ_{round|k'|=k} E|x̂_k'|²``. x: (..., n, n) → (N/2 + 1,)."""
    return shell_sum(modal_power(x))


def shell_spectra(x: Tensor) -> Tensor:
    """Radial power spectrum of every field: (..., n, n) → (..., N/2 + 1), float64."""
    xh = torch.fft.fft2(x.to(torch.float64), norm="forward")
    return shell_sum(xh.real**2 + xh.imag**2)


def energy_spectra(vorticity: Tensor) -> Tensor:
    """Kinetic-energy spectrum ``E(k) = Σ_shell |ω̂|²/(2|k|²)`` of every field (k = 0 excluded): (..., n, n) →
    (..., N/2 + 1), float64. Their mean over fields is the ensemble's energy spectrum."""
    n = vorticity.shape[-1]
    k2 = wavenumber_magnitude(n, vorticity.device, torch.float64) ** 2
    k2[0, 0] = math.inf
    wh = torch.fft.fft2(vorticity.to(torch.float64), norm="forward")
    return shell_sum((wh.real**2 + wh.imag**2) / (2 * k2))


def isotropic_modal_spectrum(x: Tensor) -> Tensor:
    """Shell-mean modal variance, shape (N/2 + 1,): the radially smooth spectrum stored with a dataset."""
    n = x.shape[-1]
    return radial_spectrum(x) / shell_counts(n, x.device).clamp(min=1)


def modal_from_shells(shell_values: Tensor, n: int) -> Tensor:
    """Spread a per-shell value (N_s,) onto the (n, n) grid; shells beyond the given ones take the last value.

    Lets a spectrum measured at one resolution define noise at another (shells are in physical wavenumbers).
    """
    idx = shell_index(n, shell_values.device).clamp(max=shell_values.shape[0] - 1)
    return shell_values[idx]


BANDS = ("low", "mid", "high")


def band_edges(n: int) -> tuple[float, float, float, float]:
    """Log-spaced low/mid/high band edges from k = 1 to N/2 (N = 64: 1, 3.17, 10.08, 32), as in paper 001."""
    kmax = n / 2
    return tuple(kmax ** (i / 3) for i in range(4))  # type: ignore[return-value]


def band_masks(n: int, device=None) -> dict[str, Tensor]:
    """Shells 0..N/2 in the log-spaced low/mid/high bands (at N = 64: [1, 3.2), [3.2, 10.1), [10.1, 32]; k = 0
    is in none)."""
    k = torch.arange(n // 2 + 1, device=device, dtype=torch.float64)
    e0, e1, e2, e3 = band_edges(n)
    return {"low": (k >= e0) & (k < e1), "mid": (k >= e1) & (k < e2), "high": (k >= e2) & (k <= e3)}


HELD_FRACTION = 1e-10  # a shell holding less than this fraction of the peak is empty (dealiased away, say)


def held_shells(shells: Tensor) -> Tensor:
    """Which shells of a spectrum (..., N/2 + 1) the data actually holds: power above 10⁻¹⁰ of the peak. A 2/3-
    dealiased solver keeps |k_x|, |k_y| ≤ N/3, so shells past √2 N/3 (31 and 32 at N = 64) hold ≈ 10⁻¹⁶ of the
    peak; they are no "finest scale"."""
    shells = shells.to(torch.float64)
    return shells > HELD_FRACTION * shells.amax(-1, keepdim=True)


def finest_held_shell(shells: Tensor) -> int:
    """The highest wavenumber k ≥ 1 whose shell the data holds (``held_shells``); N/2 for a full spectrum."""
    held = torch.nonzero(held_shells(shells)[1:]).flatten()
    return int(held.max()) + 1 if held.numel() else shells.shape[-1] - 1


def band_log_errors(s_gen: Tensor, s_ref: Tensor) -> dict[str, float]:
    """Mean ``|log(S_gen/S_ref)|`` over the shells k ≥ 1 that the reference holds (``held_shells``), over all of
    them (``all``) and within each low/mid/high band: spectra (N/2 + 1,) of an N-point grid (2-D or 1-D)."""
    tiny = torch.finfo(torch.float64).tiny
    ratio = torch.abs(torch.log(s_gen.to(torch.float64).clamp(min=tiny) / s_ref.to(torch.float64).clamp(min=tiny)))
    held = held_shells(s_ref)
    held[0] = False
    masks = band_masks(2 * (s_ref.shape[-1] - 1), s_ref.device)
    errors = {"all": float(ratio[held].mean())}
    for band, mask in masks.items():
        errors[band] = float(ratio[mask & held].mean()) if (mask & held).any() else float("nan")
    return errors


def spectral_errors(s_gen: Tensor, s_ref: Tensor, n: int) -> dict[str, float]:
    """``band_log_errors`` named as the samplers report them: ``spectral_error`` and ``<band>_band_error``."""
    if s_ref.shape[-1] != n // 2 + 1:
        raise ValueError(f"spectra of {s_ref.shape[-1]} shells do not belong to an {n}-point grid")
    errors = band_log_errors(s_gen, s_ref)
    return {"spectral_error": errors["all"], **{f"{band}_band_error": errors[band] for band in BANDS}}


def spectral_filter(x: Tensor, transfer: Tensor) -> Tensor:
    """Multiply each Fourier mode of x (..., n, n) by a real transfer function on the (n, n) grid."""
    n = x.shape[-1]
    xh = torch.fft.rfft2(x)
    return torch.fft.irfft2(xh * transfer[..., : n // 2 + 1].to(xh.real.dtype), s=(n, n))


def lowpass(x: Tensor, kcut: float) -> Tensor:
    """Sharp spectral low-pass: keep modes with |k| ≤ kcut."""
    n = x.shape[-1]
    return spectral_filter(x, (wavenumber_magnitude(n, x.device) <= kcut).to(x.dtype))


def ortho_fft(x: Tensor, ndim: int) -> Tensor:
    """Unitary FFT over the last ``ndim`` dims (white noise keeps unit variance per mode)."""
    return torch.fft.fftn(x, dim=tuple(range(-ndim, 0)), norm="ortho")


def ortho_ifft(x: Tensor, ndim: int) -> Tensor:
    """Real part of the unitary inverse FFT over the last ``ndim`` dims."""
    return torch.fft.ifftn(x, dim=tuple(range(-ndim, 0)), norm="ortho").real
