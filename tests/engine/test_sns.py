"""Paper 004's SNS: the DDPM pieces, the inference algorithm against the exact Gaussian-pair posterior, the level
heads of a trained pair denoiser, and SNS in rollouts."""
import pytest
import torch

from engine.config import ForecastConfig, ForecastSamplerConfig, ModelConfig, RolloutConfig, TrainingConfig
from engine.data.sequences import Trajectories
from engine.data.store import DataStore
from engine.errors import EngineError
from engine.forecast import load_forecaster
from engine.pipelines.rollout import check_refiner_fits
from engine.refine import load_refiner
from engine.rollout import rollout
from engine.sns import (
    LevelClassifier,
    SelfRefiner,
    cosine_alpha_bar,
    ddpm_step,
    level_ladder,
    level_of_noise_fraction,
    renoised,
)
from engine.tasks.forecast import ForecastTask
from engine.training import Trainer

N, RHO = 16, 0.8


def pair_spectrum(n: int = N) -> torch.Tensor:
    """Per-mode variance S_k ∝ (1 + |k|²)⁻² on the full FFT grid, scaled to unit pixel variance."""
    k = torch.fft.fftfreq(n, 1 / n, dtype=torch.float64)
    spectrum = (1 + k[:, None] ** 2 + k[None, :] ** 2) ** -2.0
    return spectrum / spectrum.mean()


class GaussianPair:
    """Frames (a, b), per Fourier mode jointly Gaussian: Var a = Var b = S_k, Cov(a, b) = ρ S_k. Observed at levels
    (s₁, s₂) as y_f = c_f x_f + d_f ε_f (c = √ᾱ, d = √(1 − ᾱ)), everything is a 2×2 linear solve per mode:
    E[ε_f | y] = d_f (Σ_y⁻¹ y)_f and E[b | y] = (ρ S c₁, S c₂) Σ_y⁻¹ y."""

    def __init__(self, alpha_bar: torch.Tensor):
        self.spectrum, self.alpha_bar = pair_spectrum(), alpha_bar

    def sample(self, count: int, generator: torch.Generator) -> torch.Tensor:
        white = torch.randn(count, 2, N, N, generator=generator, dtype=torch.float64)
        a = torch.fft.fft2(white[:, 0], norm="ortho") * self.spectrum.sqrt()
        b = RHO * a + (1 - RHO**2) ** 0.5 * torch.fft.fft2(white[:, 1], norm="ortho") * self.spectrum.sqrt()
        return torch.fft.ifft2(torch.stack([a, b], 1), norm="ortho").real

    def _solve(self, y: torch.Tensor, levels: torch.Tensor):
        c = self.alpha_bar[levels].sqrt()[:, :, None, None]  # (batch, 2, 1, 1)
        d = (1 - self.alpha_bar[levels]).sqrt()[:, :, None, None]
        s = self.spectrum
        top, bottom = c[:, 0] ** 2 * s + d[:, 0] ** 2, c[:, 1] ** 2 * s + d[:, 1] ** 2
        cross = RHO * s * c[:, 0] * c[:, 1]
        det = top * bottom - cross**2
        modes = torch.fft.fft2(y, norm="ortho")
        w0, w1 = (bottom * modes[:, 0] - cross * modes[:, 1]) / det, (top * modes[:, 1] - cross * modes[:, 0]) / det
        return c, d, w0, w1, (top, cross, bottom, det)

    def epsilon(self, y: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        _, d, w0, w1, _ = self._solve(y.double(), levels)
        return torch.fft.ifft2(torch.stack([d[:, 0] * w0, d[:, 1] * w1], 1), norm="ortho").real.to(y.dtype)

    def posterior_current(self, y: torch.Tensor, levels: torch.Tensor) -> tuple[torch.Tensor, float]:
        """E[b | y] (batch, n, n) and the pixel-mean posterior variance of b."""
        c, _, w0, w1, (top, cross, bottom, det) = self._solve(y, levels)
        s = self.spectrum
        g0, g1 = RHO * s * c[:, 0], s * c[:, 1]
        mean = torch.fft.ifft2(g0 * w0 + g1 * w1, norm="ortho").real
        variance = s - (g0**2 * bottom - 2 * g0 * g1 * cross + g1**2 * top) / det
        return mean, float(variance.mean())


def test_the_cosine_schedule_runs_from_clean_to_pure_noise():
    alpha_bar = cosine_alpha_bar(1000)
    assert alpha_bar[0] == 1 and 0.9999 < alpha_bar[1] < 1 and alpha_bar[-1] < 1e-8
    assert bool((alpha_bar[1:] < alpha_bar[:-1]).all())
    assert float(alpha_bar[500]) == pytest.approx(0.5, abs=0.02)  # the cosine schedule's midpoint


def test_ddpm_steps_keep_equal_levels_and_land_on_the_denoised_estimate():
    g = torch.Generator().manual_seed(0)
    x, eps, noise = (torch.randn(3, N, N, generator=g) for _ in range(3))
    alpha_bar = cosine_alpha_bar(50)
    now = alpha_bar[torch.tensor([10, 0, 30])]
    kept = ddpm_step(x, eps, now, now, noise)
    assert torch.equal(kept, x)
    clean = ddpm_step(x, eps, now, torch.ones(3, dtype=torch.float64), noise)  # to level 0: x̂_0, no noise
    a = now[0].item()
    torch.testing.assert_close(clean[0], (x[0] - (1 - a) ** 0.5 * eps[0]) / a**0.5)
    assert torch.equal(level_ladder(torch.tensor([0, 3, 10]), 4)[:, 2], torch.tensor([10, 7, 5, 2, 0]))


@pytest.mark.parametrize("steps", [None, 8])
def test_sns_inference_with_the_exact_denoiser_reaches_the_exact_posterior_mean(steps):
    """With the exact ε of a Gaussian pair, the two-phase inference (conditioning frame, then current) draws from the
    posterior of the current frame given the noisy pair: its mean is exact for any ladder (each reverse step's mean
    map is the exact conditional mean), its variance approaches the posterior's as the steps shrink. Measured on 384
    draws from levels (150, 300) of K = 1000, seeds 2–4: mean error² / (variance/M) = 0.85–1.12 (the Monte Carlo
    floor) at unit and 8-step ladders; the noisy input's own error² to the posterior mean is 1300–2700× larger; the
    variance 2–3% low at unit steps (7% at K = 100), 37% low at 8 steps: DDPM's posterior variance β̃ is the lower
    bound of the reverse kernel's."""
    alpha_bar = cosine_alpha_bar(1000)
    model = GaussianPair(alpha_bar)
    g = torch.Generator().manual_seed(1)
    truth = model.sample(1, g)
    levels = torch.tensor([[150, 300]])
    y = torch.stack([renoised(truth[:, f], alpha_bar[levels[:, f]], torch.randn(1, N, N, generator=g,
                                                                                  dtype=torch.float64))
                     for f in (0, 1)], 1)
    exact_mean, exact_variance = model.posterior_current(y, levels)
    draws = 384
    refiner = SelfRefiner(model.epsilon, None, alpha_bar, steps=steps, generator=torch.Generator().manual_seed(2))
    out = refiner.refine_pair(y.repeat(draws, 1, 1, 1), levels.repeat(draws, 1))
    assert refiner.nfe == (150 + 300 if steps is None else 2 * steps)
    sample_variance = float(out.var(0).mean())
    floor = sample_variance / draws  # the Monte Carlo error² per pixel of a mean of M draws
    error = float(((out.mean(0) - exact_mean[0]) ** 2).mean())
    noisy_error = float(((y[0, 1] / alpha_bar[300].sqrt() - exact_mean[0]) ** 2).mean())
    assert error < 1.5 * floor and noisy_error > 300 * error, (error, floor, noisy_error)
    if steps is None:
        assert sample_variance == pytest.approx(exact_variance, rel=0.05)
    else:
        assert 0.55 < sample_variance / exact_variance < 0.7


def gaussian_trajectories(count: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """AR(1) Gaussian fields: every mode ``x_{n+1} = ρ x_n + √(1 − ρ²) ξ`` with stationary variance S_k: the pair
    distribution of ``GaussianPair``. (count, length, N, N) float32."""
    modes = torch.fft.fft2(torch.randn(count, length, N, N, generator=generator, dtype=torch.float64), norm="ortho")
    modes = modes * pair_spectrum().sqrt()
    for n in range(1, length):
        modes[:, n] = RHO * modes[:, n - 1] + (1 - RHO**2) ** 0.5 * modes[:, n]
    return torch.fft.ifft2(modes, norm="ortho").real.float()


def test_the_level_heads_recover_the_levels_of_held_out_pairs():
    """The heads (the classifier of ``PairDenoiser``, trained by its cross-entropy term alone here) estimate the
    levels of fresh Gaussian pairs noised at independent random levels of K = 20. Measured on 512 held-out pairs
    after 300 steps: exact 46%, within ±1 level 86%, within ±2 95%, mean error 0.75 levels (a uniform guess: 7; free
    logits per level instead of the Gaussian in log-SNR: 32%, 73%, 91%, 1.1); on 16² fields the noise variance
    itself is only known to ≈ 9%, about one level here."""
    levels_k = 20
    alpha_bar = cosine_alpha_bar(levels_k).float()
    model = GaussianPair(cosine_alpha_bar(levels_k))
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)

    def noised_pairs(count):
        pair = model.sample(count, g).float()
        levels = torch.randint(levels_k + 1, (count, 2), generator=g)
        noise = torch.randn(count, 2, N, N, generator=g)
        return torch.stack([renoised(pair[:, f], alpha_bar[levels[:, f]], noise[:, f]) for f in (0, 1)], 1), levels

    heads = LevelClassifier(levels_k)
    optimizer = torch.optim.Adam(heads.parameters(), lr=3e-3)
    for _ in range(300):
        pairs, levels = noised_pairs(64)
        loss = torch.nn.functional.cross_entropy(heads(pairs).flatten(0, 1), levels.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    pairs, levels = noised_pairs(512)
    with torch.no_grad():
        error = (heads(pairs).argmax(-1) - levels).abs().float()
    assert float((error <= 1).float().mean()) > 0.78 and float(error.mean()) < 1.1, float(error.mean())


@pytest.fixture(scope="module")
def trained_sns(tmp_path_factory):
    """A tiny SNS model (K = 50) trained briefly on AR(1) Gaussian trajectories: the plumbing, not the skill."""
    g = torch.Generator().manual_seed(3)
    data = Trajectories(gaussian_trajectories(4, 16, g), mean=1.0, std=2.0, dt=0.5, variable="w")  # normalized
    task = ForecastTask(data, ForecastConfig(task="sns", levels=50))
    checkpoint = Trainer(task, ModelConfig(size="tiny"), TrainingConfig(steps=20, batch_size=8, log_every=10),
                         tmp_path_factory.mktemp("sns")).run()
    return checkpoint, data


def test_train_task_sns_makes_an_emulator_and_a_refiner(trained_sns):
    checkpoint, data = trained_sns
    forecaster = load_forecaster(checkpoint)
    assert forecaster.kind == "sns" and forecaster.net.levels == 50
    state = data.denormalize(data.fields[0, :3])
    after = forecaster.step(state, ForecastSamplerConfig(steps=5), torch.Generator().manual_seed(0))
    assert after.shape == state.shape and torch.isfinite(after).all() and forecaster.nfe == 5
    again = forecaster.step(state, ForecastSamplerConfig(steps=5), torch.Generator().manual_seed(0))
    assert torch.equal(after, again)  # the noise is the generator's
    refiner = load_refiner(checkpoint, torch.device("cpu"), sns_steps=4)
    assert isinstance(refiner, SelfRefiner)
    result = refiner.refine(state, after)
    assert result.states.shape == state.shape and result.levels.shape == (3, 2)
    assert refiner.nfe <= 2 * 4 and bool(((result.levels > 0).any(1) == result.refined).all())
    floor = level_of_noise_fraction(cosine_alpha_bar(50), 0.1)  # renoise: at least 10% of the variance is noise
    floored = load_refiner(checkpoint, torch.device("cpu"), sns_steps=4, renoise=0.1).refine(state, after)
    assert 0 < floor and bool((floored.levels[:, 1] >= floor).all()) and bool(floored.refined.all())


def test_a_rollout_refines_with_sns_from_the_previous_state(trained_sns):
    checkpoint, data = trained_sns
    refiner = load_refiner(checkpoint, torch.device("cpu"), sns_steps=3)
    seen = []

    def step(x):
        seen.append(x.clone())
        return x + 0.1

    def refine(x, previous):
        assert torch.equal(previous, seen[-1])  # the state the step started from
        return refiner(x, previous)

    start = data.denormalize(data.fields[:2, 0])
    result = rollout(step, start, RolloutConfig(steps=4, members=1, refine_every=2), data_std=2.0, refiner=refine)
    assert result.steps_done == 4 and result.states.shape == (2, 5, N, N)


def test_a_refiner_for_another_grid_or_system_is_refused(trained_sns):
    checkpoint, data = trained_sns
    store = DataStore(checkpoint.parent)
    check_refiner_fits(store=store, refiner=checkpoint.name, trajectories=data)  # its own data fits
    tiny = Trajectories(data.fields, mean=0.0, std=data.std * 1e-6, dt=data.dt, variable="pv")  # a QG jet's PV
    with pytest.raises(EngineError, match="trained on fields of std 2 .* train a refiner on this system"):
        check_refiner_fits(store=store, refiner=checkpoint.name, trajectories=tiny)
    other_field = Trajectories(data.fields, mean=data.mean, std=data.std, dt=data.dt, variable="u")  # Allen–Cahn's
    with pytest.raises(EngineError, match="was trained on w .*the test data is u: choose a refiner"):
        check_refiner_fits(store=store, refiner=checkpoint.name, trajectories=other_field)
    coarse = Trajectories(data.fields[..., ::2, ::2], mean=data.mean, std=data.std, dt=data.dt, variable="w")
    with pytest.raises(EngineError, match=f"works on {N}² fields; the test data is {N // 2}²"):
        check_refiner_fits(store=store, refiner=checkpoint.name, trajectories=coarse)
