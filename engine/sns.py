"""Self-refining neural surrogates (paper 004, SNS): a diffusion model of consecutive-state pairs that pulls an
emulator's rollout back toward the data, or emulates on its own.

A DDPM with the cosine schedule over K levels (``ᾱ_0 = 1`` clean, ``ᾱ_K ≈ 0``) noises the pair
``(u_{n−1}, u_n)`` at two *independent* levels ``(s₁, s₂)``: ``x_s = √ᾱ_s u + √(1 − ᾱ_s) ε``. One network predicts
both frames' ε given both levels, and a level-blind classifier with two heads (K + 1 classes each, cross-entropy
weighted 0.1) estimates each frame's level from the pair alone: the paper's multi-noise-level oracle.

Refinement (the paper's inference): estimate both levels of (previous, current), renoise each frame to its level,
denoise the conditioning frame to clean with the current one held at its level, then the current frame with the
conditioning one clean. As an emulator: the current frame from pure noise at level K given the clean previous one.
Reverse steps are DDPM's posterior ``q(x_{s'} | x_s, x̂_0)`` between any two levels (strided when ``steps`` is set).
docs/science.md §5 has the method and how it differs from the reference code.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.unet import _conv, _norm, build_unet
from engine.spectral import wavenumber_magnitude

Tensor = torch.Tensor
SNS_LEVELS = 1000  # the paper's K
LEVEL_LOSS_WEIGHT = 0.1  # weight of each head's cross-entropy (the paper's 0.1)
MIN_WIDTH = 0.02  # the level heads' narrowest Gaussian, in standardized log-SNR
X0_CLIP = 10.0  # bound on the denoised estimate, in data standard deviations (normalized fields)


def cosine_alpha_bar(levels: int, offset: float = 0.008) -> Tensor:
    """``ᾱ_s`` for s = 0…K (float64): ᾱ_0 = 1, ``ᾱ_s = Π_{j≤s} (1 − β_j)``, ``β_j = min(1 − f(j)/f(j − 1), 0.999)``,
    ``f(s) = cos²(π/2 · (s/K + o)/(1 + o))`` (Nichol and Dhariwal's cosine schedule, as paper 004)."""
    s = torch.arange(levels + 1, dtype=torch.float64)
    f = torch.cos((s / levels + offset) / (1 + offset) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)])


def per_sample(values: Tensor, like: Tensor) -> Tensor:
    """(batch,) values in ``like``'s dtype, shaped to broadcast over ``like`` (batch, ...)."""
    return values.to(like.dtype).reshape(-1, *(1,) * (like.dim() - 1))


def renoised(x: Tensor, alpha_bar: Tensor, noise: Tensor) -> Tensor:
    """The forward process ``√ᾱ x + √(1 − ᾱ) ε`` with a per-sample ᾱ: (batch,)."""
    a = per_sample(alpha_bar, x)
    return a.sqrt() * x + (1 - a).sqrt() * noise


def ddpm_step(x: Tensor, eps: Tensor, now: Tensor, after: Tensor, noise: Tensor) -> Tensor:
    """A draw from ``q(x_{s'} | x_s, x̂_0)`` with ``x̂_0 = (x_s − √(1 − ᾱ_s) ε̂)/√ᾱ_s``; ``now``, ``after``: per-sample
    ᾱ_s ≤ ᾱ_{s'}. Mean ``(√ᾱ_{s'} β̃ x̂_0 + √r (1 − ᾱ_{s'}) x_s)/(1 − ᾱ_s)``, variance ``β̃ (1 − ᾱ_{s'})/(1 − ᾱ_s)``,
    r = ᾱ_s/ᾱ_{s'}, β̃ = 1 − r; equal levels leave x as it is. x̂_0 is clipped to ±``X0_CLIP`` (DDPM's clipping: near
    level K, 1/√ᾱ_s ≈ 10⁴ multiplies the error of ε̂)."""
    a, b = per_sample(now, x), per_sample(after, x)
    moving = a < b
    a_safe = torch.where(moving, a, torch.zeros_like(a))  # keeps 1 − ᾱ_s > 0 where nothing moves
    x0 = ((x - (1 - a_safe).sqrt() * eps) / a.sqrt()).clamp(-X0_CLIP, X0_CLIP)
    ratio = a_safe / b
    mean = ((b.sqrt() * (1 - ratio)) * x0 + (ratio.sqrt() * (1 - b)) * x) / (1 - a_safe)
    stepped = mean + ((1 - ratio) * (1 - b) / (1 - a_safe)).sqrt() * noise
    return torch.where(moving, stepped, x)


def level_of_noise_fraction(alpha_bar: Tensor, fraction: float) -> int:
    """The first level whose noise fraction ``1 − ᾱ_s`` reaches ``fraction`` (0 for 0; K if none does)."""
    reached = torch.nonzero((1 - alpha_bar) >= fraction).flatten()
    return int(reached[0]) if reached.numel() else len(alpha_bar) - 1


def level_ladder(start: Tensor, steps: int) -> Tensor:
    """Per-sample levels from ``start`` (batch,) down to 0 in ``steps`` equal strides: (steps + 1, batch) long,
    ``⌊s (J − j)/J⌋``; unit steps when J equals the largest start."""
    j = torch.arange(steps, -1, -1, device=start.device)
    return torch.div(start[None, :] * j[:, None], steps, rounding_mode="floor")


def band_energies(x: Tensor, bands: int = 8) -> Tensor:
    """Power in ``bands`` equal-width rings of |k| up to the Nyquist shell: (..., n, n) → (..., bands)."""
    n = x.shape[-1]
    ring = (wavenumber_magnitude(n, x.device) * bands / (n // 2 + 1)).long().clamp(max=bands - 1)
    power = torch.fft.fft2(x.float(), norm="forward").abs() ** 2
    return torch.zeros(*x.shape[:-2], bands, device=x.device).index_add_(-1, ring.flatten(), power.flatten(-2))


def standardized_log_snr(levels: int) -> Tensor:
    """``λ_s = ln(ᾱ_s/(1 − ᾱ_s))`` for s = 1…K, extrapolated by one level's step to s = 0 (clean, λ = ∞), standardized
    over the levels."""
    alpha_bar = cosine_alpha_bar(levels)[1:]
    snr = (alpha_bar / (1 - alpha_bar)).log()
    snr = torch.cat([(2 * snr[0] - snr[1])[None], snr])
    return (snr - snr.mean()) / snr.std()


class LevelClassifier(nn.Module):
    """Level-blind heads over the pair: periodic strided convolutions and a global mean, with each frame's log power in
    8 wavenumber rings (white noise lifts the fine rings first). Each head scores the K + 1 levels by a Gaussian in
    their log-SNR ``λ_s = ln(ᾱ_s/(1 − ᾱ_s))``, ``logit_s = −½ ((λ_s − μ)/w)²`` with μ and w predicted: a classifier
    trained by cross-entropy like the paper's, whose neighbouring levels share evidence. λ is standardized over the
    levels and w = 0.02 + sigmoid(·) kept in [0.02, 1.02] of its std: an unbounded precision collapsed to 0 (uniform
    logits, no gradient left for μ) on Gaussian pairs."""

    def __init__(self, levels: int, channels: int = 16, depth: int = 3, bands: int = 8, fields: int = 1):
        super().__init__()
        layers: list[nn.Module] = [_conv(2 * fields, channels)]
        for _ in range(depth):
            layers += [_norm(channels), nn.SiLU(), _conv(channels, channels, stride=2)]
        self.features, self.bands = nn.Sequential(*layers), bands
        self.heads = nn.Sequential(nn.Linear(channels + 2 * fields * bands, 4 * channels), nn.SiLU(),
                                   nn.Linear(4 * channels, 4))
        self.register_buffer("log_snr", standardized_log_snr(levels).float(), persistent=False)

    def forward(self, pair: Tensor) -> Tensor:
        pooled = self.features(pair).mean(dim=(-2, -1))
        rings = band_energies(pair, self.bands).clamp(min=1e-12).log().flatten(1)
        mean, width = self.heads(torch.cat([pooled, rings], 1)).view(-1, 2, 2, 1).unbind(2)
        return -0.5 * ((self.log_snr - mean) / (MIN_WIDTH + torch.sigmoid(width))) ** 2  # (batch, 2, K + 1)


def frames_as_channels(pair: Tensor) -> Tensor:
    """A pair of states (batch, 2, C, n, n) as the networks' channels (batch, 2C, n, n); a pair of one-field states
    (batch, 2, n, n) as it is."""
    return pair.flatten(1, 2) if pair.dim() == 5 else pair


class PairDenoiser(nn.Module):
    """ε̂_θ(x_{s₁}, x_{s₂}; s₁, s₂) for both frames (a U-Net told both levels) and the level classifier, over states
    of ``channels`` fields."""

    def __init__(self, size: str, levels: int = SNS_LEVELS, channels: int = 1):
        super().__init__()
        self.levels = levels
        self.denoiser = build_unet(size, in_channels=2 * channels, out_channels=2 * channels, conditions=2)
        self.classifier = LevelClassifier(levels, fields=channels)
        self.register_buffer("alpha_bar", cosine_alpha_bar(levels).float(), persistent=False)

    def times(self, levels: Tensor) -> Tensor:
        """The denoiser's conditioning: levels (batch, 2) as fractions s/K of the schedule."""
        return levels.float() / self.levels

    def forward(self, pair: Tensor, levels: Tensor) -> tuple[Tensor, Tensor]:
        """ε̂ shaped as the pair (batch, 2, *state) at the given levels (batch, 2), and the heads' logits (batch, 2,
        K + 1)."""
        flat = frames_as_channels(pair)
        return self.denoiser(flat, self.times(levels)).view_as(pair), self.classifier(flat)

    def estimate_levels(self, pair: Tensor) -> Tensor:
        """Each frame's most likely level: (batch, 2) long."""
        return self.classifier(frames_as_channels(pair)).argmax(-1)


def sns_loss(net: nn.Module, pair: Tensor, levels: Tensor, noise: Tensor, alpha_bar: Tensor) -> Tensor:
    """``|ε̂ − ε|²`` over both frames plus 0.1 × each head's cross-entropy; pair, noise: (batch, 2, *state) clean and
    unit Gaussian, levels: (batch, 2) long drawn independently in 0…K."""
    noisy = torch.stack([renoised(pair[:, f], alpha_bar[levels[:, f]], noise[:, f]) for f in (0, 1)], 1)
    eps, logits = net(noisy, levels)
    heads = F.cross_entropy(logits.float().flatten(0, 1), levels.flatten())
    return torch.mean((eps.float() - noise) ** 2) + 2 * LEVEL_LOSS_WEIGHT * heads


@dataclass
class Refined:
    """Refined states (physical units), the estimated levels (batch, 2) of (previous, current), and the mask of the
    states that were refined (a nonzero level on either frame)."""

    states: Tensor
    levels: Tensor
    refined: Tensor


class SelfRefiner:
    """Paper 004's inference on normalized fields with any ε-predictor ``denoise(pair, levels)`` and level estimator
    ``classify(pair)``; ``steps`` caps the reverse steps per frame (None or 0: every level, as the paper);
    ``min_level`` renoises the current frame to at least that level (0: the paper's estimate alone)."""

    def __init__(self, denoise, classify, alpha_bar: Tensor, *, mean: float = 0.0, std: float = 1.0,
                 steps: int | None = None, min_level: int = 0, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu"):
        self.denoise, self.classify, self.steps, self.min_level = denoise, classify, steps or None, min_level
        self.alpha_bar, self.mean, self.std = alpha_bar.to(device), mean, std
        self.levels, self.nfe = len(alpha_bar) - 1, 0
        self.generator = generator or torch.Generator(device).manual_seed(0)

    def _noise(self, like: Tensor) -> Tensor:
        return torch.randn(like.shape, generator=self.generator, device=like.device, dtype=like.dtype)

    def denoise_frame(self, pair: Tensor, levels: Tensor, frame: int, steps: int) -> Tensor:
        """Frame ``frame`` of ``pair`` (at ``levels``, (batch, 2)) taken to level 0 in ``steps`` reverse steps, the
        other frame held where it is (no step at all when ``steps`` is 0)."""
        if steps == 0:
            return pair
        ladder, levels = level_ladder(levels[:, frame], steps), levels.clone()
        for now, after in zip(ladder[:-1], ladder[1:]):
            levels[:, frame] = now
            self.nfe += 1
            eps = self.denoise(pair, levels)[:, frame]
            moved = ddpm_step(pair[:, frame], eps, self.alpha_bar[now], self.alpha_bar[after],
                              self._noise(pair[:, frame]))
            pair = torch.stack([moved, pair[:, 1]] if frame == 0 else [pair[:, 0], moved], 1)
        return pair

    def _ladder_steps(self, levels: Tensor) -> int:
        top = int(levels.max())  # the one host sync of a refinement
        return top if self.steps is None else min(top, self.steps)

    @torch.no_grad()
    def refine_pair(self, pair: Tensor, levels: Tensor) -> Tensor:
        """The noisy normalized pair at ``levels`` denoised: the conditioning frame first, then the current one."""
        pair = self.denoise_frame(pair, levels, 0, self._ladder_steps(levels[:, 0]))
        levels = torch.stack([torch.zeros_like(levels[:, 0]), levels[:, 1]], 1)
        return self.denoise_frame(pair, levels, 1, self._ladder_steps(levels[:, 1]))[:, 1]

    @torch.no_grad()
    def refine(self, previous: Tensor, current: Tensor) -> Refined:
        """Estimate both frames' levels (the current one at least ``min_level``), renoise each frame to its level,
        denoise (physical units in and out)."""
        pair = (torch.stack([previous, current], 1).float() - self.mean) / self.std
        levels = self.classify(pair)
        levels[:, 1] = levels[:, 1].clamp(min=self.min_level)
        refined = (levels > 0).any(1)
        if not bool(refined.any()):
            return Refined(current, levels, refined)
        noisy = torch.stack([renoised(pair[:, f], self.alpha_bar[levels[:, f]], self._noise(pair[:, f]))
                             for f in (0, 1)], 1)
        mask = refined.reshape(-1, *(1,) * (current.dim() - 1))
        states = torch.where(mask, self.refine_pair(noisy, levels), pair[:, 1])
        return Refined(states * self.std + self.mean, levels, refined)

    def __call__(self, x: Tensor, previous: Tensor) -> tuple[Tensor, Tensor]:
        """The rollout's refiner interface: (refined states, mask of refined members)."""
        result = self.refine(previous, x)
        return result.states.to(x.dtype), result.refined

    @torch.no_grad()
    def forecast(self, previous: Tensor, steps: int) -> Tensor:
        """The next state given the clean previous one (physical units): the current frame from pure noise at
        level K to 0 in ``steps`` strided reverse steps."""
        x = (previous.float() - self.mean) / self.std
        pair = torch.stack([x, self._noise(x)], 1)
        levels = torch.zeros(x.shape[0], 2, dtype=torch.long, device=x.device)
        levels[:, 1] = self.levels
        return self.denoise_frame(pair, levels, 1, min(steps, self.levels))[:, 1] * self.std + self.mean
