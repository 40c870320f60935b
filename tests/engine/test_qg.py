"""The two-layer QG solver against exact answers: Rossby waves of a single wavevector (an exact nonlinear solution:
the Jacobian of two functions of one phase vanishes) and the energy budget identity; the generated dataset."""
import json
import math

import numpy as np
import pytest
import torch

from engine.checkpoints import save_checkpoint
from engine.cli import main
from engine.config import QGConfig, options
from engine.data.catalog import install_defaults
from engine.data.qg import TwoLayerQG, simulate_qg
from engine.data.store import DataStore, parameter_digest
from engine.errors import EngineError
from engine.spectral import shell_spectra
from tests.engine.resuming import interrupt_and_resume

N = 16


def single_mode(equation: TwoLayerQG, psi: tuple[complex, complex], my: int = 1, mx: int = 2) -> torch.Tensor:
    """q̂ (1, 2, n, n/2 + 1) of ψ_i = Re(ψ_i e^{i(k x + l y)}) at integer wavenumbers (mx, my)."""
    psi_hat = torch.zeros(1, 2, N, N // 2 + 1, dtype=torch.complex128)
    for layer, amplitude in enumerate(psi):
        psi_hat[0, layer, my, mx] = amplitude * N * N / 2  # rfft2 of Re(a e^{iθ}) holds a n²/2 at (my, mx)
    k2, f1, f2 = equation.k2[my, mx], equation.f1, equation.f2
    q_hat = psi_hat.clone()
    q_hat[:, 0] = -k2 * psi_hat[:, 0] + f1 * (psi_hat[:, 1] - psi_hat[:, 0])
    q_hat[:, 1] = -k2 * psi_hat[:, 1] + f2 * (psi_hat[:, 0] - psi_hat[:, 1])
    return q_hat


def integrate(equation: TwoLayerQG, q_hat: torch.Tensor, duration: float, steps: int) -> torch.Tensor:
    for _ in range(steps):
        q_hat = equation.step(q_hat, duration / steps)
    return q_hat


@pytest.mark.parametrize("mode", ["barotropic", "baroclinic"])
def test_rossby_waves_travel_at_the_exact_frequency(mode):
    """Without mean flow or drag, ψ₁ = ψ₂ travels at ω = −β k/K² and the baroclinic mode (H₁ψ₁ + H₂ψ₂ = 0) at
    ω = −β k/(K² + F₁ + F₂): 0.3 periods in 200 RK4 steps land within 1e-8 of the exact wave (measured 1.2e-10;
    periods 114 and 2686 days at (l, k) = (1, 2)·2π/L)."""
    equation = TwoLayerQG(N, upper_flow=0.0, lower_flow=0.0, rek=0.0, filtered=False)
    psi = (1e4, 1e4) if mode == "barotropic" else (1e4, -equation.delta * 1e4)
    q0 = single_mode(equation, psi)
    k, k2 = float(equation.kx[1, 2]), float(equation.k2[1, 2])
    omega = -equation.beta * k / (k2 + (0 if mode == "barotropic" else equation.f1 + equation.f2))
    period = 2 * math.pi / abs(omega)
    after = integrate(equation, q0, 0.3 * period, 200)
    exact = q0 * complex(math.cos(omega * 0.3 * period), -math.sin(omega * 0.3 * period))
    assert float((after - exact).abs().max() / q0.abs().max()) < 1e-8


def test_a_sheared_single_mode_follows_the_exact_linear_evolution():
    """With the jet's shear U₁ − U₂ = 0.025 and bottom drag, a single wavevector evolves by exp(A t) of the 2×2 mode
    matrix A = −ik diag(U) − ik diag(Q_y) M⁻¹ + diag(0, r_ek K²) M⁻¹; at (l, k) = (1, 5)·2π/L one eigenvalue has a
    positive real part (the jet is baroclinically unstable there, e-folding in about a year)."""
    equation = TwoLayerQG(N, filtered=False)
    my, mx = 1, 5
    q0 = single_mode(equation, (1e3, 2e2 + 3e2j), my, mx)
    k, k2 = float(equation.kx[my, mx]), float(equation.k2[my, mx])
    inversion = equation.inversion[:, :, my, mx].to(torch.complex128)
    matrix = (-1j * k * torch.diag(equation.flows.to(torch.complex128))
              - 1j * k * torch.diag(equation.pv_gradients.to(torch.complex128)) @ inversion
              + torch.diag(torch.tensor([0.0, equation.rek * k2], dtype=torch.complex128)) @ inversion)
    assert float(torch.linalg.eigvals(matrix).real.max()) > 1e-8
    duration = 1e7
    exact = torch.linalg.matrix_exp(matrix * duration) @ q0[0, :, my, mx]
    after = integrate(equation, q0, duration, 400)[0, :, my, mx]
    assert float((after - exact).abs().max() / exact.abs().max()) < 1e-9  # measured 1.5e-12


def test_energy_changes_only_by_baroclinic_generation_and_bottom_drag():
    """Without the filter, ``−Σ (H_i/H) ⟨ψ_i ∂q_i/∂t⟩`` equals generation + drag to round-off (advection and β
    exchange no energy; measured 1.7e-15), and the energy of an RK4 run changes at that rate (central difference over
    ±600 s: 6.6e-8)."""
    equation = TwoLayerQG(32, filtered=False)
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 2, 32, 32, generator=g, dtype=torch.float64) * 1e-5
    q_hat = torch.fft.rfft2(q) * equation.dealias * (equation.k2 < (8 * 2 * math.pi / equation.length) ** 2)
    budget = equation.energy_budget(q_hat)
    closed = budget["generation"] + budget["drag"]
    assert torch.allclose(budget["rate"], closed, rtol=1e-9, atol=0)
    assert bool((budget["drag"] < 0).all()) and bool((budget["generation"].abs() > 0).all())
    dt = 600.0
    before, after = equation.step(q_hat, -dt), equation.step(q_hat, dt)
    measured = (equation.energy(after) - equation.energy(before)) / (2 * dt)
    assert torch.allclose(measured, closed, rtol=1e-5, atol=0)


def test_the_filter_only_removes_the_smallest_scales():
    equation = TwoLayerQG(N)
    assert float(equation.filter[:4, :4].min()) == 1.0 and float(equation.filter.min()) < 1e-3


@pytest.fixture(scope="module")
def small_jet():
    config = QGConfig(size=N, trajectories=2, snapshots=3, spin_up=36000.0 * 4, perturbation=1e-6, device="cpu")
    return config, simulate_qg(config)


def test_a_generated_jet_set_has_both_layers_units_and_provenance(small_jet):
    config, dataset = small_jet
    assert dataset["pv_upper"].shape == (2, 3, N, N) and dataset["pv_lower"].dims == ("trajectory", "time", "y", "x")
    assert dataset["pv_upper"].attrs["units"] == "1/s" and dataset["x"].attrs["units"] == "m"
    assert dataset.attrs["generator"] == "engine.data.qg" and dataset.attrs["rd"] == config.rd
    assert float(dataset["time"][0]) == pytest.approx(config.spin_up + config.save_interval)
    assert float(abs(dataset["pv_upper"]).max()) > 0 and bool(dataset["spectrum"].notnull().all())


def test_a_jet_faster_than_the_courant_bound_stops_with_a_clear_error():
    config = QGConfig(size=N, trajectories=1, snapshots=1, spin_up=0.0, perturbation=1e-6, upper_flow=5.0,
                      dt=36000.0, device="cpu")
    with pytest.raises(EngineError, match="Courant number .* lower --dt"):
        simulate_qg(config)


def test_data_qg_writes_a_dataset_through_the_cli(tmp_path, capsys):
    main(["--data-dir", str(tmp_path), "data", "qg", "--size", str(N), "--trajectories", "1", "--snapshots", "2",
          "--spin-up", "0", "--out", "jet.nc"])
    assert "wrote jet.nc" in capsys.readouterr().out and (tmp_path / "jet.nc").exists()


def test_the_shipped_jet_is_spun_up_with_stationary_jets_and_spectrum(tmp_path):
    """The built-in set (``data qg --size 64 --trajectories 2 --snapshots 40 --seed 1``: 3·10⁸ s of spin-up, then 40
    states 36000 s apart): the upper layer's time-mean zonal-mean flow ū(y) forms jets as strong as the eddies
    (measured: ū spans −0.025…0.036 m/s, eddy rms 0.033) and is the same in both halves of the record (correlation
    0.98); the upper-layer PV spectrum of the two halves agrees within 0.89–1.07 at k = 1…21."""
    name = install_defaults(DataStore(tmp_path))[4]
    with DataStore(tmp_path).open(name) as ds:
        q = torch.from_numpy(np.stack([ds["pv_upper"].values, ds["pv_lower"].values], 2)).double()
    equation = TwoLayerQG(64)
    u = torch.fft.irfft2(-1j * equation.ky * equation.streamfunction(torch.fft.rfft2(q)), s=(64, 64))[:, :, 0]
    jets, half = u.mean(-1), q.shape[1] // 2  # (trajectory, time, y)
    eddies = float((u - jets[..., None]).pow(2).mean().sqrt())
    for profile in jets:
        first, second = profile[:half].mean(0), profile[half:].mean(0)
        assert float(first.max() - first.min()) > eddies and np.corrcoef(first, second)[0, 1] > 0.9
    ratio = (shell_spectra(q[:, half:, 0]).mean((0, 1)) / shell_spectra(q[:, :half, 0]).mean((0, 1)))[1:22]
    assert 0.8 < float(ratio.min()) and float(ratio.max()) < 1.25


def test_the_shipped_qg_surrogate_rolls_out_on_the_built_in_jet_and_beats_persistence(tmp_path, capsys):
    """``runs/shipped-qg-pointwise``, an emulator of both layers (800 steps on 8 jets of seed 0), on the built-in set
    (seed 1), 10 steps: each layer's VRMSE at every lead at most half of that layer's persistence (measured: upper
    0.0042 against 0.025 at lead 1, 0.040 against 0.24 at lead 10; lower 0.0033 against 0.012, 0.032 against
    0.117; the upper-layer emulator had 0.0058 and 0.056)."""
    name = install_defaults(DataStore(tmp_path))[4]
    assert main(["--data-dir", str(tmp_path), "rollout", "--checkpoint", "runs/shipped-qg-pointwise/checkpoint.pt",
                 "--data", name, "--steps", "10", "--members", "1", "--initial-conditions", "2", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["blowup_step"] is None and scores["lead_steps"] == list(range(11))
    assert set(scores["per_variable"]) == {"pv_upper", "pv_lower"}
    for layer, layer_scores in scores["per_variable"].items():
        with DataStore(tmp_path).open(name) as ds:
            pv = torch.from_numpy(ds[layer].values[:2, :11]).double()
        persistence = ((pv - pv[:, :1]).pow(2).mean((-2, -1)) / pv.var((-2, -1), unbiased=False)).sqrt().mean(0)
        assert all(v <= 0.5 * float(p) for v, p in zip(layer_scores["vrmse"][1:], persistence[1:])), layer


def test_an_interrupted_jet_resumes_bit_exactly_and_an_older_state_file_is_refused(tmp_path):
    config = QGConfig(size=N, trajectories=2, snapshots=4, spin_up=36000.0 * 2, perturbation=1e-6, device="cpu")
    full = simulate_qg(config)
    state = tmp_path / ".jet.partial.pt"
    events, resumed = interrupt_and_resume(simulate_qg, config, state, at=3)  # after the spin-up and one snapshot
    assert events[0] == {"kind": "resumed", "step": 3, "steps": 6} and len(events) == 1 + 3
    assert np.array_equal(resumed["pv_upper"].values, full["pv_upper"].values)
    older = tmp_path / ".older.partial.pt"  # a state written before the solvers shared their save loop
    save_checkpoint({"digest": parameter_digest(options(config)), "done": 3, "omega_hat": torch.zeros(1),
                     "saved": torch.empty(0)}, older)
    with pytest.raises(EngineError, match="older version: delete it"):
        simulate_qg(config, None, older)
