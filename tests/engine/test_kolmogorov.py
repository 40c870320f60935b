import math
import shutil

import pytest
import torch

from engine.data.kolmogorov import SCHEMES, KolmogorovFlow, crank_nicolson_rk4
from engine.errors import EngineError
from tests.engine.resuming import interrupt_and_resume


def _grid(n):
    x = torch.arange(n, dtype=torch.float64) * 2 * math.pi / n
    return torch.meshgrid(x, x, indexing="ij")  # (y, x)


def _integrate(step, omega, steps):
    """ω after ``steps`` of ``step`` on its rfft2."""
    omega_hat = torch.fft.rfft2(omega)
    for _ in range(steps):
        omega_hat = step(omega_hat)
    return torch.fft.irfft2(omega_hat, s=omega.shape[-2:])


def _run(equation, omega, dt, steps):
    """The IMEX RK4 in its generic form (explicit terms, implicit terms and solve as three callables)."""
    step = crank_nicolson_rk4(equation.explicit_terms, equation.implicit_terms, equation.implicit_solve, dt)
    return _integrate(step, omega, steps)


def _convergence_rates(make_step, exact, steps=(10, 20, 40)):
    """log₂ of successive error ratios at t = 1 of u(0) = 1 integrated by ``make_step(dt)`` at dt = 1/steps."""
    errors = []
    for count in steps:
        step, u = make_step(1.0 / count), torch.ones(1, dtype=torch.complex128)
        for _ in range(count):
            u = step(u)
        errors.append(abs(complex(u[0]) - exact))
    return [math.log2(a / b) for a, b in zip(errors, errors[1:])]


def _taylor_green(n=32, nu=0.05, drag=0.1):
    """ψ = sin x sin y, ω = 2 sin x sin y with no forcing: u·∇ω ≡ 0, so ω(t) = ω(0) exp(−(2ν + μ) t). Returns the
    equation, ω(0) and t ↦ ω(t)."""
    y, x = _grid(n)
    omega0 = (2 * torch.sin(x) * torch.sin(y))[None]
    equation = KolmogorovFlow(n, viscosity=nu, drag=drag)
    equation.forcing_hat = torch.zeros_like(equation.forcing_hat)
    return equation, omega0, lambda t: omega0 * math.exp(-(2 * nu + drag) * t)


def test_taylor_green_vortex_decays_exactly():
    eq, omega0, exact = _taylor_green()
    assert torch.allclose(_run(eq, omega0, dt=0.05, steps=40), exact(2.0), atol=1e-8)


def test_kolmogorov_laminar_state_is_steady():
    # ω* = −n cos(ny)/(ν n² + μ) balances the forcing exactly and has no advection
    n, k, nu, drag = 32, 4, 1e-2, 0.1
    y, _ = _grid(n)
    steady = (-k * torch.cos(k * y) / (nu * k**2 + drag))[None]
    eq = KolmogorovFlow(n, viscosity=nu, drag=drag, forcing_wavenumber=k)
    assert torch.allclose(_run(eq, steady, 0.01, 50), steady, atol=1e-9)


@pytest.mark.parametrize("explicit_rate,implicit_rate,order", [(-1.0 + 2j, 0.0, 4), (0.0, -3.0, 2)])
def test_stepper_converges_at_its_order_on_a_linear_problem(explicit_rate, implicit_rate, order):
    # u' = (a + b) u with a explicit, b implicit: RK4 is 4th order, Crank–Nicolson 2nd
    rates = _convergence_rates(lambda dt: crank_nicolson_rk4(lambda u: explicit_rate * u, lambda u: implicit_rate * u,
                                                             lambda u, mu: u / (1 - mu * implicit_rate), dt),
                               math.e ** (explicit_rate + implicit_rate))
    assert all(abs(r - order) < 0.3 for r in rates), rates


def test_bad_parameters_are_refused():
    with pytest.raises(EngineError, match="viscosity"):
        KolmogorovFlow(32, viscosity=-1e-3)
    with pytest.raises(EngineError, match="even number"):
        KolmogorovFlow(33)


def test_spun_up_flow_is_stationary_with_the_forced_peak_and_a_steep_decay(tmp_path):
    from engine.cli import main
    from engine.config import KolmogorovConfig
    from engine.data.kolmogorov import simulate_kolmogorov
    from engine.spectral import energy_spectra, radial_spectrum

    ds = simulate_kolmogorov(KolmogorovConfig(size=64, trajectories=4, snapshots=40, spin_up=30.0, save_interval=0.5))
    assert ds["vorticity"].dims == ("trajectory", "time", "y", "x") and ds.sizes["time"] == 40
    assert ds.attrs["viscosity"] == 1e-3 and ds.attrs["dt"] > 0
    omega = torch.from_numpy(ds["vorticity"].values).double()
    energy = energy_spectra(omega).sum(-1).mean(0)  # total energy of each snapshot, mean over trajectories
    first, second = energy[:20].mean(), energy[20:].mean()
    assert abs(float(first / second) - 1) < 0.3  # stationary within the fluctuations of 4 short runs
    spectrum = energy_spectra(omega).reshape(-1, 33).mean(0)
    # energy is injected at k = 4: the enstrophy spectrum k²E peaks there and E has a local peak there
    # (the inverse cascade of 2-D turbulence also piles energy up at k = 1, 2)
    assert int(torch.argmax(radial_spectrum(omega)[1:])) + 1 == 4
    assert spectrum[4] > spectrum[3] and spectrum[4] > 3 * spectrum[5]
    slope = math.log(spectrum[20] / spectrum[8]) / math.log(20 / 8)
    assert slope < -3  # steep (enstrophy-cascade) decay past the forcing scale
    # the CLI writes the same dataset atomically
    out = tmp_path / "k.nc"
    assert main(["--data-dir", str(tmp_path), "data", "kolmogorov", "--size", "32", "--trajectories", "1",
                 "--snapshots", "2",
                 "--spin-up", "0", "--out", "k.nc"]) == 0
    assert out.exists() and [p.name for p in tmp_path.iterdir()] == ["k.nc"]


def test_a_flow_faster_than_its_cfl_bound_stops_with_a_clear_error():
    from engine.config import KolmogorovConfig
    from engine.data.kolmogorov import simulate_kolmogorov

    with pytest.raises(EngineError, match="raise max_velocity"):
        simulate_kolmogorov(KolmogorovConfig(size=32, trajectories=1, snapshots=2, spin_up=0.0, max_velocity=0.01))


def test_an_interrupted_run_resumes_bit_exactly(tmp_path):
    from engine.config import KolmogorovConfig
    from engine.data.kolmogorov import simulate_kolmogorov

    config = KolmogorovConfig(size=16, trajectories=2, snapshots=6, spin_up=1.0, save_interval=0.5, device="cpu")
    full = simulate_kolmogorov(config)
    state = tmp_path / ".k.partial.pt"
    events, resumed = interrupt_and_resume(simulate_kolmogorov, config, state, at=4)  # spin-up and two snapshots
    assert events[0] == {"kind": "resumed", "step": 4, "steps": 8} and len(events) == 1 + 4
    assert torch.equal(torch.from_numpy(resumed["vorticity"].values), torch.from_numpy(full["vorticity"].values))
    with pytest.raises(EngineError, match="other parameters"):
        other = KolmogorovConfig(size=16, trajectories=2, snapshots=7, spin_up=1.0, device="cpu")
        simulate_kolmogorov(other, None, state)


def test_the_fused_diagonal_stage_equals_the_generic_one():
    from engine.data.kolmogorov import random_vorticity

    eq = KolmogorovFlow(32, viscosity=1e-2, drag=0.1)
    omega_hat = torch.fft.rfft2(random_vorticity(32, 2, torch.Generator().manual_seed(0)))
    generic = crank_nicolson_rk4(eq.explicit_terms, eq.implicit_terms, eq.implicit_solve, 0.01)
    fused = crank_nicolson_rk4(eq.explicit_terms, eq.implicit_terms, eq.implicit_solve, 0.01, eq.linear)
    a, b = omega_hat, omega_hat
    for _ in range(20):
        a, b = generic(a), fused(b)
    torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)


def test_the_advection_term_is_the_closed_form_and_the_convective_products():
    """ω = cos x + cos 2y: ψ = cos x + cos(2y)/4, so u·∇ω = −(3/2) sin x sin 2y exactly; on a random field Basdevant's
    form equals u ∂ω/∂x + v ∂ω/∂y of the same dealiased fields to round-off."""
    from engine.data.kolmogorov import random_vorticity

    eq = KolmogorovFlow(16, viscosity=1e-2, drag=0.1)
    y, x = _grid(16)
    advection = torch.fft.irfft2(eq.explicit_terms(torch.fft.rfft2(torch.cos(x) + torch.cos(2 * y))) - eq.forcing_hat,
                                 s=(16, 16))
    torch.testing.assert_close(advection, 1.5 * torch.sin(x) * torch.sin(2 * y), rtol=0, atol=1e-12)
    eq = KolmogorovFlow(32)
    omega_hat = torch.fft.rfft2(random_vorticity(32, 2, torch.Generator().manual_seed(0))) * eq.dealias
    u, v, dwdx, dwdy = (torch.fft.irfft2(m * omega_hat, s=(32, 32)) for m in (
        eq.iky * eq.inverse_laplacian, -eq.ikx * eq.inverse_laplacian, eq.ikx, eq.iky))
    convective = eq.forcing_hat - eq.dealias * torch.fft.rfft2(u * dwdx + v * dwdy)
    torch.testing.assert_close(eq.explicit_terms(omega_hat), convective, rtol=0,
                               atol=1e-12 * convective.abs().max().item())


def _run_etdrk4(equation, omega, dt, steps):
    from engine.data.kolmogorov import etdrk4

    return _integrate(etdrk4(equation.explicit_terms, equation.linear, dt), omega, steps)


def test_etdrk4_integrates_the_linear_part_exactly():
    """The Taylor–Green vortex (no advection, no forcing) decays as e^(−(2ν + μ) t) and the laminar state (constant
    N = f) stays steady to rounding: the exponential integrator is exact where N is constant in time."""
    eq, omega0, exact = _taylor_green()
    assert torch.allclose(_run_etdrk4(eq, omega0, dt=0.5, steps=4), exact(2.0), atol=1e-12)  # dt 10× the CN test's
    n, k, nu, drag = 32, 4, 1e-2, 0.1
    y, _ = _grid(n)
    steady = (-k * torch.cos(k * y) / (nu * k**2 + drag))[None]
    forced = KolmogorovFlow(n, viscosity=nu, drag=drag, forcing_wavenumber=k)
    assert torch.allclose(_run_etdrk4(forced, steady, 0.2, 25), steady, atol=1e-11)


def test_etdrk4_converges_at_fourth_order_on_a_linear_problem_with_a_stiff_part():
    """u' = L u + a u with L = −50 (stiff, exact) and a = −1 + 2i (explicit): log₂ error ratios ≈ 4."""
    from engine.data.kolmogorov import etdrk4

    linear, rate = torch.tensor([-50.0], dtype=torch.float64), -1.0 + 2j
    rates = _convergence_rates(lambda dt: etdrk4(lambda u: rate * u, linear, dt), math.e ** (linear.item() + rate),
                               steps=(40, 80, 160))  # past the pre-asymptotic range of |L| dt ≥ 1
    assert all(abs(r - 4) < 0.3 for r in rates), rates


def test_the_schemes_agree_on_a_short_run_and_name_their_data_apart():
    """ETDRK4 and the IMEX RK4 from the same flow agree to their error at the CFL step; the default scheme keeps the
    names data had before the parameter existed, the other gets its own."""
    from engine.config import KolmogorovConfig
    from engine.data.catalog import cached_name
    from engine.data.kolmogorov import simulate_kolmogorov
    from engine.data.store import parameter_digest

    shape = dict(size=32, trajectories=2, snapshots=2, spin_up=1.0, save_interval=0.5)
    imex = simulate_kolmogorov(KolmogorovConfig(**shape))
    exponential = simulate_kolmogorov(KolmogorovConfig(**shape, scheme="etdrk4"))
    a, b = imex["vorticity"].values, exponential["vorticity"].values
    assert 0 < abs(a - b).max() < 1e-5 * abs(a).max()
    assert (imex.attrs["scheme"], exponential.attrs["scheme"]) == ("cn_rk4", "etdrk4")
    assert "ETDRK4" in exponential.attrs["method"]
    default = KolmogorovConfig()
    before = {k: v for k, v in default.param.values().items() if k not in ("name", "scheme")}
    assert cached_name(default) == f"kolmogorov-64-{parameter_digest(before)}.nc"
    assert cached_name(KolmogorovConfig(scheme="etdrk4")) != cached_name(default)


@pytest.mark.filterwarnings("ignore:Torchinductor does not support code generation for complex")
@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_the_compiled_step_equals_the_eager_one(scheme):
    """``torch.compile`` of a scheme's step (inductor, float64, a turbulent 16² start) agrees with eager to 1e-6."""
    from engine.data.kolmogorov import random_vorticity, time_stepper

    if not shutil.which("cc"):
        pytest.skip("torch.compile's CPU backend needs a C compiler")
    equation = KolmogorovFlow(16)
    step = time_stepper(equation, scheme, 0.05)
    start = torch.fft.rfft2(random_vorticity(16, 2, torch.Generator().manual_seed(0)))
    eager, compiled = start, start
    compiled_step = torch.compile(step, fullgraph=False, dynamic=False)
    for _ in range(3):
        eager, compiled = step(eager), compiled_step(compiled)
    assert torch.allclose(compiled, eager, rtol=1e-6, atol=1e-6 * float(eager.abs().max()))


def test_dopri5_converges_at_fifth_order_on_a_linear_problem():
    """u' = a u with a = −1 + 2i: log₂ error ratios ≈ 5."""
    from engine.data.kolmogorov import dormand_prince5

    rate = -1.0 + 2j
    rates = _convergence_rates(lambda dt: dormand_prince5(lambda u: rate * u, dt), math.e**rate)
    assert all(abs(r - 5) < 0.3 for r in rates), rates


def test_dopri5_matches_the_other_schemes_and_refuses_a_stiff_step():
    """From the same turbulent 32² flow, dopri5 agrees with ETDRK4 to their error at dt 0.02 (the Taylor–Green decay
    is exact to its order too); a step beyond its diffusive stability interval is refused, not run."""
    from engine.data.kolmogorov import random_vorticity, time_stepper

    equation = KolmogorovFlow(32)
    start = torch.fft.rfft2(random_vorticity(32, 2, torch.Generator().manual_seed(1)))
    ends = {}
    for scheme in ("etdrk4", "dopri5"):
        step, state = time_stepper(equation, scheme, 0.02), start
        for _ in range(10):
            state = step(state)
        ends[scheme] = state
    difference = float((ends["dopri5"] - ends["etdrk4"]).abs().max() / ends["etdrk4"].abs().max())
    assert 0 < difference < 1e-5
    decaying, omega0, exact = _taylor_green()
    assert torch.allclose(_integrate(time_stepper(decaying, "dopri5", 0.1), omega0, 10), exact(1.0), atol=1e-9)
    with pytest.raises(EngineError, match="dopri5 treats viscosity.*exceeds its stability bound 3.3"):
        time_stepper(KolmogorovFlow(32, viscosity=1.0), "dopri5", 0.02)


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_each_scheme_makes_the_evaluations_its_table_names_and_the_config_offers_it(scheme):
    """A step calls N as often as ``SCHEMES`` says (the GPU benchmark's bandwidth estimate counts on it)."""
    from engine.config import KolmogorovConfig
    from engine.data.kolmogorov import time_stepper

    equation, calls = KolmogorovFlow(16), []
    explicit = equation.explicit_terms
    equation.explicit_terms = lambda omega_hat: calls.append(1) or explicit(omega_hat)
    time_stepper(equation, scheme, 0.01)(torch.zeros(1, 16, 9, dtype=torch.complex128))
    assert len(calls) == SCHEMES[scheme].evaluations
    assert KolmogorovConfig.param.scheme.objects == list(SCHEMES)
