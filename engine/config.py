"""Option sets for every engine job: one source of truth for the CLI flags and the dashboard's widgets.

Each class is a ``param.Parameterized``: bounds, choices, defaults and docs live here; an invalid value
raises ``ValueError`` naming the option and what it accepts.
"""
from __future__ import annotations

import param

from engine.devices import DEVICE_CHOICES
from engine.noise import NOISE_KINDS
from engine.samplers import DIFFUSION_SHAPES
from engine.schedules import BETA_FORMS, SCHEDULE_KINDS

MODEL_SIZES = ("tiny", "small", "base", "large")
FORECAST_METHODS = ("si_em", "si_e", "pf_ode")  # paper 001's two samplers by their names, and the exact PF-ODE


def show_only(config: param.Parameterized, by: str, used: dict[str, tuple]) -> None:
    """Hide the parameters that the chosen ``by`` (a kind, a method) does not use: ``used`` maps a parameter to
    the values that use it. Hidden means precedence −1, so a form rendered from the config (``pn.Param``) shows
    only what applies; the values stay, and the command line takes every flag."""
    for name, values in used.items():
        config.param[name].precedence = 1 if getattr(config, by) in values else -1


class NoiseConfig(param.Parameterized):
    """The source distribution x0: a stationary Gaussian field with a chosen spectrum."""

    kind = param.Selector(default="matched", objects=list(NOISE_KINDS),
                          doc="white: flat spectrum; powerlaw: per-mode variance ∝ |k|^-p; matched: the data's own "
                              "spectrum")
    exponent = param.Number(default=4.0, bounds=(0.0, 12.0),
                            doc="p for power-law noise; it should not exceed the data's slope, or the drift becomes "
                                "stiff")

    @param.depends("kind", watch=True, on_init=True)
    def _show_what_applies(self) -> None:
        show_only(self, "kind", {"exponent": ("powerlaw",)})


class ScheduleConfig(param.Parameterized):
    """The interpolation x_t = α(t) x0 + β(t) x1 + γ(t) z."""

    kind = param.Selector(default="linear", objects=list(SCHEDULE_KINDS),
                          doc="linear; vp (cos/sin); ve; designed (scale-adaptive, paper 000); powerlaw β(t) family; "
                              "time-dilated vp/ve (paper 003)")
    r = param.Number(default=None, allow_None=True, bounds=(1e-12, 1e12),
                     doc="designed schedule's data-to-noise ratio at the highest wavenumber; empty: measured from the "
                         "spectra")
    beta_form = param.Selector(default="t", objects=list(BETA_FORMS), doc="β(t) of the power-law family")
    gamma_sigma = param.Number(default=0.0, bounds=(0.0, 10.0), doc="σ in γ(t) = σ(1 − t)√t of the power-law family")
    sigma_max = param.Number(default=None, allow_None=True, bounds=(1.0, 1e5),
                             doc="VE noise scale; empty: √d, d the number of pixels (paper 003)")
    dilation_k = param.Number(default=5.0, bounds=(0.1, 1000.0), doc="k of paper 003's time dilation")

    @param.depends("kind", watch=True, on_init=True)
    def _show_what_applies(self) -> None:
        show_only(self, "kind", {"r": ("designed",), "beta_form": ("powerlaw",), "gamma_sigma": ("powerlaw",),
                                 "sigma_max": ("ve", "ve_dilated"), "dilation_k": ("vp_dilated", "ve_dilated")})


def precision_parameter() -> param.Selector:
    """The precision of a network's forward pass (``engine.devices.Accelerated``)."""
    return param.Selector(default="auto", objects=["auto", "float32", "bfloat16"],
                          doc="the network's forward under autocast: auto is bfloat16 on CUDA, float32 on CPU")


def compile_parameter(pays_off: str) -> param.Boolean:
    """Whether a network runs through ``torch.compile``."""
    return param.Boolean(default=False, doc=f"torch.compile the network (pays off on {pays_off}; off on CPU)")


class SamplerConfig(param.Parameterized):
    """How to integrate from noise to data."""

    method = param.Selector(default="ode", objects=["ode", "sde"],
                            doc="ode: probability flow dX = b dt; sde: adds ε(t)·score and noise, same marginals")
    integrator = param.Selector(default="euler", objects=["euler", "heun", "rk4"],
                                doc="ODE integrator: euler (1 NFE a step), heun (2), rk4 (4; paper 000's sampler); "
                                    "the SDE uses Euler–Maruyama")
    steps = param.Integer(default=16, bounds=(1, 10000), doc="number of time steps")
    grid = param.Selector(default="uniform", objects=["uniform", "dilated"],
                          doc="time grid: uniform, or paper 003's VP dilation (half the steps early)")
    eps = param.Number(default=1.0, bounds=(0.0, 100.0), softbounds=(0.0, 5.0), step=0.05,
                       doc="diffusion scale ε of the SDE")
    eps_shape = param.Selector(default="sine", objects=list(DIFFUSION_SHAPES),
                               doc="ε(t): constant, sine ε·sin(πt), alpha2 ε·α(t)²")
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), doc="seed of the noise: equal seeds compare configurations "
                                                               "on the same noise")
    precision = precision_parameter()
    compile = compile_parameter("many-sample GPU runs")

    @param.depends("method", watch=True, on_init=True)
    def _show_what_applies(self) -> None:
        show_only(self, "method", {"integrator": ("ode",), "eps": ("sde",), "eps_shape": ("sde",)})


class ModelConfig(param.Parameterized):
    """The drift b(t, x)."""

    kind = param.Selector(default="unet", objects=["unet", "analytic"],
                          doc="unet: a trained network; analytic: the exact drift for Gaussian data with the data's "
                              "spectrum")
    size = param.Selector(default="tiny", objects=list(MODEL_SIZES), doc="U-Net width and depth, tiny (CPU demo) to "
                                                                         "large (GPU)")


class TrainingConfig(param.Parameterized):
    """Regression of the drift on the interpolant target."""

    steps = param.Integer(default=2000, bounds=(1, 10_000_000), doc="optimizer steps")
    batch_size = param.Integer(default=32, bounds=(1, 4096), doc="fields per step")
    lr = param.Number(default=2e-3, bounds=(1e-7, 1.0), doc="AdamW learning rate (cosine-decayed after warm-up)")
    weight_decay = param.Number(default=0.0, bounds=(0.0, 1.0), doc="AdamW weight decay")
    ema_decay = param.Number(default=0.999, bounds=(0.0, 0.99999), step=0.0001,
                             doc="decay of the EMA weights used for sampling")
    grad_clip = param.Number(default=1.0, bounds=(0.0, 1e6), doc="gradient-norm clip (0: off)")
    spectral_weight = param.Number(default=0.0, bounds=(0.0, 0.5),
                                   doc="p: weight each Fourier mode of the residual by (S_n/mean S_n)^(-p); 0 is the "
                                       "plain pixel L2 of the papers, 0.5 whitens it against the noise (our option: "
                                       "docs/benchmarks.md has its measured effect)")
    checkpoint_every = param.Integer(default=500, bounds=(1, 10_000_000), doc="steps between atomic checkpoints")
    log_every = param.Integer(default=25, bounds=(1, 100_000), doc="steps between loss events")
    max_seconds = param.Number(default=None, allow_None=True, bounds=(1.0, 1e7), doc="stop after this wall time")
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), doc="seed of initialization and batches")
    device = param.Selector(default="auto", objects=list(DEVICE_CHOICES), doc="auto: CUDA when present")
    precision = precision_parameter()
    compile = compile_parameter("long GPU runs")


class GRFConfig(param.Parameterized):
    """Stationary Gaussian random fields with per-mode variance σ²(|k|² + ℓ²)^(−s) (docs/science.md §1)."""

    size = param.Integer(default=64, bounds=(8, 2048), doc="grid points per side (even)")
    count = param.Integer(default=256, bounds=(1, 1_000_000), doc="number of fields")
    slope = param.Number(default=3.0, bounds=(0.0, 10.0), doc="s: per-mode variance decays as |k|^(−2s)")
    ell = param.Number(default=1.0, bounds=(1e-3, 1e3), doc="ℓ: wavenumber below which the spectrum flattens")
    sigma = param.Number(default=1.0, bounds=(1e-6, 1e6), doc="σ: amplitude")
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), doc="random seed")


def options(config: param.Parameterized) -> dict:
    """The config's values as a plain dict (stored in checkpoints and netCDF attrs)."""
    return {name: value for name, value in config.param.values().items() if name != "name"}


class KolmogorovConfig(param.Parameterized):
    """2-D Kolmogorov flow, vorticity form, on [0, 2π)² (defaults: the PDD setup of docs/science.md §3)."""

    size = param.Integer(default=64, bounds=(8, 4096), doc="grid points per side (even)")
    trajectories = param.Integer(default=8, bounds=(1, 100_000),
                                 doc="independent trajectories, integrated as one batch")
    snapshots = param.Integer(default=200, bounds=(1, 1_000_000), doc="saved states per trajectory")
    viscosity = param.Number(default=1e-3, bounds=(1e-7, 10.0), doc="kinematic viscosity ν")
    drag = param.Number(default=0.1, bounds=(0.0, 10.0), doc="linear drag μ")
    forcing_wavenumber = param.Integer(default=4, bounds=(1, 64), doc="n in the forcing sin(n y) of the x-velocity")
    save_interval = param.Number(default=0.5, bounds=(1e-4, 1e4), doc="time between saved snapshots Δt_save")
    spin_up = param.Number(default=50.0, bounds=(0.0, 1e6), doc="time integrated and discarded before saving")
    max_velocity = param.Number(default=8.0, bounds=(1e-3, 1e4),
                                doc="velocity bound for the CFL time step; the run stops with an error if exceeded")
    cfl = param.Number(default=0.5, bounds=(0.01, 1.0), doc="Courant number of the time step")
    scheme = param.Selector(default="cn_rk4", objects=["cn_rk4", "etdrk4", "dopri5"],
                            doc="time stepper: cn_rk4, jax-cfd's IMEX Crank–Nicolson RK4 (the papers' data); etdrk4, "
                                "exponential RK4 with the viscous part exact (4 nonlinear evaluations a step, not 5); "
                                "dopri5, explicit Dormand–Prince RK5 (6 a step, the smallest error at a large dt)")
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), doc="seed of the random initial conditions")
    device = param.Selector(default="auto", objects=list(DEVICE_CHOICES), doc="auto: CUDA when present")


class QGConfig(param.Parameterized):
    """Two-layer quasi-geostrophic jet on a doubly periodic β-plane (paper 004's pyqg setup at 64², docs/science.md §5:
    L = 10⁶ m, β = 10⁻¹¹, r_ek = 7·10⁻⁸, δ = 0.1, r_d = 15 km, U₁ = 0.025, U₂ = 0, saved every 36000 s)."""

    size = param.Integer(default=64, bounds=(8, 4096),
                         doc="grid points per side (even); the paper: 256, averaged to 64")
    trajectories = param.Integer(default=4, bounds=(1, 100_000), doc="independent jets, integrated as one batch")
    snapshots = param.Integer(default=200, bounds=(1, 1_000_000), doc="saved states per trajectory")
    length = param.Number(default=1e6, bounds=(1e3, 1e8), doc="domain side L (m)")
    beta = param.Number(default=1e-11, bounds=(0.0, 1e-8), doc="β, the planetary vorticity gradient (1/(m s))")
    rek = param.Number(default=7e-8, bounds=(0.0, 1e-3), doc="bottom drag r_ek on the lower layer (1/s)")
    delta = param.Number(default=0.1, bounds=(1e-3, 1e3), doc="layer depth ratio δ = H₁/H₂")
    rd = param.Number(default=15e3, bounds=(1.0, 1e7), doc="deformation radius r_d (m)")
    upper_flow = param.Number(default=0.025, bounds=(-10.0, 10.0),
                              doc="background zonal flow U₁ of the upper layer (m/s)")
    lower_flow = param.Number(default=0.0, bounds=(-10.0, 10.0),
                              doc="background zonal flow U₂ of the lower layer (m/s)")
    dt = param.Number(default=3600.0, bounds=(1.0, 1e6), doc="time step (s); shortened to divide the save interval")
    save_interval = param.Number(default=36000.0, bounds=(1.0, 1e9), doc="time between saved snapshots (s)")
    spin_up = param.Number(default=3e8, bounds=(0.0, 1e11),
                           doc="time integrated and discarded before saving (s); the paper: 3.1·10⁹ at 256²")
    perturbation = param.Number(default=1e-7, bounds=(0.0, 1.0), doc="amplitude of the initial random PV (1/s)")
    cfl = param.Number(default=0.5, bounds=(0.01, 2.0), doc="largest Courant number |u| dt/dx before the run stops")
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), doc="seed of the initial perturbations")
    device = param.Selector(default="auto", objects=list(DEVICE_CHOICES), doc="auto: CUDA when present")


class AllenCahnConfig(param.Parameterized):
    """Stochastic Allen–Cahn ∂u/∂t = νΔu + u − u³ + σ Q^{1/2} ξ on [0, 2π)², q_k = (1 + ℓ²|k|²)^(−s) (paper 000's
    non-Gaussian case, in 2-D; docs/science.md §1). The defaults sit in the disordered phase: domains of u ≈ ±1 at
    many sizes that form and dissolve, stationary after ≈ 150 time units, pointwise kurtosis ≈ 1.5."""

    size = param.Integer(default=64, bounds=(4, 4096), doc="grid points per side (even)")
    trajectories = param.Integer(default=8, bounds=(1, 100_000), doc="independent chains, integrated as one batch")
    snapshots = param.Integer(default=200, bounds=(1, 1_000_000), doc="saved states per trajectory")
    diffusivity = param.Number(default=0.01, bounds=(1e-6, 10.0),
                               doc="ν (= ε²): interfaces between the phases are ≈ √(2ν) wide")
    noise_amplitude = param.Number(default=0.45, bounds=(0.0, 10.0), doc="σ, the noise amplitude")
    noise_length = param.Number(default=0.3, bounds=(1e-3, 10.0),
                                doc="ℓ, the noise's correlation length (ℓ → 0 makes it white: no 2-D solution)")
    noise_smoothness = param.Number(default=1.5, bounds=(0.05, 10.0),
                                    doc="s in q_k = (1 + ℓ²|k|²)^(−s); s > 0 in 2-D (white noise has no solution)")
    dt = param.Number(default=0.05, bounds=(1e-5, 0.5),
                      doc="time step (shortened to divide the save interval); the cubic is explicit: dt < 1")
    save_interval = param.Number(default=2.0, bounds=(1e-4, 1e4), doc="time between saved snapshots")
    spin_up = param.Number(default=200.0, bounds=(0.0, 1e6),
                           doc="time integrated from u = 0 and discarded, to reach the invariant measure")
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), doc="seed of every trajectory's noise")
    device = param.Selector(default="auto", objects=list(DEVICE_CHOICES), doc="auto: CUDA when present")


class Lorenz96Config(param.Parameterized):
    """Two-scale Lorenz-96 (docs/science.md §3: K = 32, J = 4, F = b = c = 10, h = 1, dt = 5·10⁻⁴)."""

    slow = param.Integer(default=32, bounds=(4, 100_000), doc="K slow variables X_k")
    fast_per_slow = param.Integer(default=4, bounds=(1, 1000), doc="J fast variables Y_{j,k} per slow variable")
    forcing = param.Number(default=10.0, bounds=(-100.0, 100.0), doc="F")
    coupling = param.Number(default=1.0, bounds=(0.0, 100.0), doc="h")
    space_scale = param.Number(default=10.0, bounds=(0.01, 1000.0), doc="b: amplitude ratio of slow to fast")
    time_scale = param.Number(default=10.0, bounds=(0.01, 1000.0), doc="c: speed ratio of fast to slow")
    dt = param.Number(default=5e-4, bounds=(1e-7, 0.1), doc="RK4 time step")
    save_every = param.Integer(default=100, bounds=(1, 10_000_000), doc="steps between saved states")
    snapshots = param.Integer(default=1000, bounds=(1, 10_000_000), doc="saved states per trajectory")
    spin_up = param.Number(default=10.0, bounds=(0.0, 1e6), doc="time integrated and discarded before saving")
    trajectories = param.Integer(default=4, bounds=(1, 100_000), doc="independent trajectories (one batch)")
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), doc="seed of the initial perturbations")


class CoarseConfig(param.Parameterized):
    """Coarse-graining at diffusion scale λ: ``dx = a Δx dλ + b dW`` on normalized fields (docs/science.md §3)."""

    lam = param.Number(default=0.1, bounds=(0.0, 1.0), label="Diffusion scale λ", doc="diffusion scale λ: 0 is the "
                                                                                      "field itself, larger is coarser")
    a = param.Number(default=0.3, bounds=(0.0, 100.0), label="a", doc="a: Laplacian diffusivity (0.3 for Kolmogorov, "
                                                                      "0.1 for Lorenz-96)")
    b2 = param.Number(default=2.0, bounds=(0.0, 100.0), label="b²", doc="b²: noise intensity of the OU process")
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), doc="seed of the noise ε")


class PDDConfig(param.Parameterized):
    """Predictor-driven diffusion (docs/science.md §3): one λ-conditioned predictor of temporal increments."""

    window = param.Integer(default=3, bounds=(1, 16), doc="past frames the predictor F_θ(x_n; λ) sees (zero-padded at "
                                                          "a sequence's start)")
    frames = param.Integer(default=8, bounds=(2, 256), doc="frames per training sequence")
    a = param.Number(default=None, allow_None=True, bounds=(0.0, 100.0), label="a",
                     doc="Laplacian diffusivity of the forward process (default: 0.3 for 2-D fields, 0.1 for "
                         "Lorenz-96)")
    b2 = param.Number(default=2.0, bounds=(1e-6, 100.0), label="b²", doc="noise intensity b² of the forward process")
    std_ratio = param.Number(default=1.0, bounds=(1e-3, 100.0),
                             doc="the path model's noise std as a multiple of sqrt(mean_k Q_k(λ)) (the reference's "
                                 "std_ratio)")
    lam_sampling = param.Selector(default="uniform", objects=["uniform", "quadratic"],
                                  doc="training λ: uniform on [0, 1] (the paper's), or λ = u² (denser near 0, where "
                                      "fine scales are decided)")


class PDDSamplerConfig(param.Parameterized):
    """Reverse-λ integration (generation, super-resolution) and fixed-λ simulation with a PDD predictor."""

    lam = param.Number(default=0.1, bounds=(0.0, 1.0), label="Diffusion scale λ",
                       doc="λ of the coarse input (super-resolution), 1 for generation from noise, or the λ simulated "
                           "at")
    steps = param.Integer(default=200, bounds=(1, 100_000), label="λ steps", doc="ETD1 steps from the input's λ down "
                                                                                 "to 0")
    method = param.Selector(default="sde", objects=["sde", "ode"],
                            doc="sde: the reverse SDE (score weight b², noise b√dλ); ode: the probability-flow ODE "
                                "(weight b²/2, no noise)")
    grid = param.Selector(default="uniform", objects=["uniform", "geometric"],
                          doc="λ grid: the paper's uniform one, or geometric (our option: equal steps per octave of "
                              "scale, down to 0.1/|μ|max, then 0)")
    integrator = param.Selector(default="etd1", objects=["etd1", "gaussian"],
                                doc="etd1: the paper's exponential step, exact in the OU drift −μ_k (needs |μ|max dλ ≲ "
                                    "1); gaussian (our option): exact for Gaussian fields with the data's spectrum, "
                                    "ETD1 for the rest of the score (stable at far fewer λ steps on fine grids)")
    variance = param.Selector(default="scalar", objects=["scalar", "spectral"],
                              doc="the path action's noise variance: the paper's mean_k Q_k(λ) (scalar) or per mode "
                                  "Q_k(λ) (spectral, our option)")
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), doc="seed of the coarse-graining and sampling noise")
    precision = precision_parameter()
    compile = compile_parameter("long GPU runs")


class ForecastConfig(param.Parameterized):
    """Emulation ``u_n → u_{n+lead}`` (docs/science.md §2 and §5)."""

    task = param.Selector(default="forecast",
                          objects=["forecast", "noise_baseline", "diffusion", "ddpm", "pointwise", "fno", "sns"],
                          doc="forecast: stochastic interpolant from u_n; noise_baseline: a conditional generator from "
                              "Gaussian noise; diffusion: an EDM diffusion model of u_{n+1} given u_n (many steps); "
                              "ddpm: the same as a DDPM (ε-prediction, the papers' baseline); pointwise: a U-Net "
                              "predicting the residual u_{n+1} − u_n; fno: the same residual map as a Fourier neural "
                              "operator (paper 001's baseline); sns: paper 004's pair denoiser with noise-level heads "
                              "(a refiner of any rollout, or an emulator)")
    sigma = param.Number(default=1.0, bounds=(0.0, 10.0),
                         doc="σ of the interpolant (1 − t) u_n + t u_{n+1} + σ(1 − t)√t z (σ = 1 was best on "
                             "Kolmogorov flow)")
    lead = param.Integer(default=1, bounds=(1, 1000), doc="saved snapshots between the input and the target")
    unroll = param.Integer(default=1, bounds=(1, 32), doc="pointwise, fno: steps of the unrolled multi-step MSE")
    levels = param.Integer(default=1000, bounds=(2, 4000),
                           doc="sns, ddpm: diffusion levels K (cosine schedule; the papers' 1000)")


class ForecastSamplerConfig(param.Parameterized):
    """How a trained forecaster advances one step."""

    method = param.Selector(default="si_em", objects=list(FORECAST_METHODS),
                            doc="si_em: paper 001's SI-EM, Euler–Maruyama with diffusion g(t) = ε σ (1 − t); si_e: "
                                "paper 001's SI-E, Euler on b with the noise dropped (the reference's 'euler'); "
                                "pf_ode: the exact probability-flow ODE (score-corrected drift; our addition); a "
                                "diffusion model always samples with EDM's deterministic Heun sampler from fresh noise")
    steps = param.Integer(default=4, bounds=(1, 1000),
                          doc="integration steps per forecast (1-20 is typical); for a diffusion model the noise "
                              "levels of its Heun sampler (2N − 1 evaluations; tens are typical); for a ddpm its "
                              "strided reverse steps (the papers' baselines use ~100)")
    eps = param.Number(default=1.0, bounds=(0.0, 10.0),
                       doc="ε: SDE diffusion g(t) = ε σ(1 − t); 1 is the interpolant's own noise, 0 the ODE")
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), doc="seed of the sampling noise")
    precision = precision_parameter()
    compile = compile_parameter("long GPU rollouts")


class RolloutConfig(param.Parameterized):
    """An autoregressive ensemble rollout."""

    steps = param.Integer(default=50, bounds=(1, 1_000_000), label="Rollout steps", doc="forecast steps")
    members = param.Integer(default=4, bounds=(1, 4096), doc="ensemble members per initial condition")
    initial_conditions = param.Integer(default=1, bounds=(1, 4096), doc="test initial conditions (trajectories)")
    start = param.Integer(default=0, bounds=(0, 1_000_000), doc="time index of the initial conditions")
    save_every = param.Integer(default=1, bounds=(1, 100_000), doc="keep every k-th state in the result")
    blowup = param.Number(default=20.0, bounds=(1.0, 1e6),
                          doc="stop when max|u − mean| exceeds this many data standard deviations (or on NaN)")
    refine_every = param.Integer(default=0, bounds=(0, 100_000), doc="apply the refiner every k steps (0: never)")
    renoise = param.Number(default=0.0, bounds=(0.0, 0.99),
                           doc="refiner: states that look cleaner than this noise fraction are first noised to it, so "
                               "over-smoothed states are refined too (our option; 0: the estimated level alone, as "
                               "paper 004's SNS and the Thermalizer)")
    refine_steps = param.Integer(default=0, bounds=(0, 4000),
                                 doc="SNS refiner: at most this many reverse steps per frame (0: one per level from "
                                     "the estimated one down, as paper 004)")
    lam = param.Number(default=0.0, bounds=(0.0, 1.0), label="Diffusion scale λ",
                       doc="PDD models: simulate the field coarse-grained at this λ (truth is coarse-grained alike)")
    device = param.Selector(default="auto", objects=list(DEVICE_CHOICES), doc="auto: CUDA when present")


class MixtureConfig(param.Parameterized):
    """Paper 003's teaching problem: a two-mode Gaussian mixture in d dimensions, sampled by Euler on the exact
    drift."""

    d = param.Integer(default=10_000, bounds=(10, 1_000_000), doc="dimension d")
    p = param.Number(default=0.8, bounds=(0.01, 0.99), doc="weight of the mode at +μ")
    sigma2 = param.Number(default=0.5, bounds=(0.01, 10.0), label="σ²", doc="within-mode variance")
    steps = param.Integer(default=64, bounds=(1, 512), doc="Euler steps (uniform in t, on each schedule's time)")
    dilation_k = param.Number(default=3.0, bounds=(0.1, 50.0), label="Dilation k",
                              doc="k of the dilated schedules: VP spends half its steps on β ≤ k/√d, VE on noise ≤ k")
    count = param.Integer(default=500, bounds=(10, 10_000), doc="samples")


class CurieWeissConfig(param.Parameterized):
    """Paper 003's second teaching problem: Curie–Weiss spins in d dimensions (two phases), sampled by Euler on the
    exact drift (``engine.curie_weiss``)."""

    d = param.Integer(default=3000, bounds=(10, 200_000), doc="dimension d (number of spins)")
    p = param.Number(default=0.8, bounds=(0.01, 0.99), doc="weight of the + phase")
    coupling = param.Number(default=2.0, bounds=(1.05, 50.0), label="Coupling J",
                            doc="J > 1: two phases of magnetization ±m, m = tanh(J m)")
    steps = param.Integer(default=32, bounds=(1, 512), doc="Euler steps (uniform in t, on each schedule's time)")
    dilation_k = param.Number(default=3.0, bounds=(0.1, 50.0), label="Dilation k",
                              doc="k of the dilated schedules, as for the mixture")
    count = param.Integer(default=200, bounds=(10, 2000), doc="samples")


class ClusterConfig(param.Parameterized):
    """Where the parts of a request run: in this machine's worker processes, or on a Dask distributed cluster."""

    scheduler = param.String(default=None, allow_None=True, label="Dask scheduler",
                             doc="address of a Dask scheduler (tcp://host:8786) that runs a rollout's initial "
                                 "conditions and a new Kolmogorov, QG or Lorenz-96 set's trajectories as tasks (the "
                                 "same numbers as here); empty: this machine. Its workers must see the data folder at "
                                 "the same path")
