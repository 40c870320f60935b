"""Views driven from Python, without a browser: what they refuse before any worker starts, and what data they pick."""
import shutil
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from app.dashboard import Studio
from app.rollout_view import RolloutView
from app.superres_view import SuperresView
from app.train_view import TrainView
from engine.data.catalog import install_defaults
from engine.data.store import DataStore
from engine.jobs import JobManager
from engine.pipelines.train import model_preview
from engine.tasks import make_task
from engine.worker import preview as downsampled


def test_the_rollout_view_offers_the_data_an_emulator_fits_and_names_the_dt_it_needs_when_none_does(tmp_path):
    store = DataStore(tmp_path)
    kolmogorov, _, _, fine_dt, _, allen_cahn = install_defaults(store)
    jobs = JobManager()
    view = RolloutView(store, jobs, lambda: kolmogorov)
    assert view.checkpoint == "runs/shipped-si-forecaster/checkpoint.pt" and view.data == kolmogorov
    assert "runs/shipped-pdd-l96/checkpoint.pt" not in view.param.checkpoint.objects  # 1-D Lorenz-96: not a field
    view.checkpoint = "runs/shipped-pdd/checkpoint.pt"  # trained on snapshots 0.02 apart; the sidebar's are 0.5
    assert view.param.data.objects == [fine_dt] and view.data == fine_dt  # its own data, not the sidebar's
    refused = [label for label, path in view.param.refiner.objects.items() if label.endswith("refused)")]
    assert any("runs/shipped-ac-" in label and "trained on u" in label for label in refused)  # another system's
    store.path(fine_dt).unlink()  # no data saved every 0.02 left: the sidebar's is refused before a worker starts
    view.refresh_checkpoints()
    assert view.data is None
    view.start()
    assert view.failure.visible and view.job is None and jobs.jobs == {}
    assert "is saved every 0.5: choose data saved every 0.02" in view.failure.object


def test_the_superres_view_opens_the_data_its_predictor_was_trained_at_and_follows_the_sidebar_when_it_fits(tmp_path):
    store = DataStore(tmp_path)
    kolmogorov, _, _, fine_dt, *_ = install_defaults(store)
    sidebar = [kolmogorov]
    view = SuperresView(store, JobManager(), lambda: sidebar[0])
    assert view.checkpoint == "runs/shipped-pdd/checkpoint.pt" and view.param.dataset.objects == [fine_dt]
    assert view.dataset == fine_dt and abs(view.data.dt - 0.02) < 1e-9 and not view.failure.visible
    assert "λ = 0.1: modes up to" in view.status.object
    shutil.copyfile(store.path(fine_dt), store.path("mine.nc"))  # a new dataset saved every 0.02, chosen in the sidebar
    sidebar[0] = "mine.nc"
    view.follow_sidebar()
    assert view.dataset == "mine.nc" and view.param.dataset.objects == sorted([fine_dt, "mine.nc"])
    assert view.data.source.endswith("mine.nc")
    sidebar[0] = kolmogorov  # saved every 0.5: the view keeps what it has
    view.follow_sidebar()
    assert view.dataset == "mine.nc" and not view.failure.visible


def test_the_superres_view_draws_the_chosen_layer_of_a_two_layer_pdd_predictor_and_its_result(tmp_path):
    """A PDD predictor of both QG layers: *Field* lists them, the coarse input and the truth are drawn for the chosen
    layer in its own colour range, and the finished job's output, spectrum and band errors are that layer's."""
    from engine.cli import main

    store = DataStore(tmp_path)
    shutil.copy("assets/qg-64-test.nc", tmp_path / "qg.nc")
    assert main(["--data-dir", str(tmp_path), "train", "--data", "qg.nc", "--task", "pdd", "--out", "runs/pdd-qg",
                 "--steps", "1", "--batch-size", "2", "--frames", "4"]) == 0
    view = SuperresView(store, JobManager(), lambda: "qg.nc")
    view.checkpoint = "runs/pdd-qg/checkpoint.pt"
    assert view.param.field.objects == ["pv_upper", "pv_lower"] and view.dataset == "qg.nc", view.failure.object
    upper = view.mapper.high - view.mapper.low
    view.field = "pv_lower"
    assert 10 < upper / (view.mapper.high - view.mapper.low) < 50  # the lower layer is 23× weaker
    view.sampler.steps = 2
    view.start()  # the real job, in a worker process
    assert view.job.wait(120), view.failure.object
    view.poll()
    result = view.job.result
    with xr.open_dataset(tmp_path / result["out"]) as ds:
        assert ds["pv_lower"].dims == ("sequence", "frame", "y", "x") and "pv_upper_spectrum" in ds
        middle = ds["pv_lower"].isel(sequence=0, frame=ds.sizes["frame"] // 2).values
    np.testing.assert_allclose(view.output_plot.source.data["image"][0], middle, rtol=1e-5, atol=1e-12)
    lower = result["per_variable"]["pv_lower"]
    assert f"high: {lower['input_error']['high']:.2f} → {lower['output_error']['high']:.2f}" in view.status.object


def test_an_upload_whose_name_is_not_a_plain_file_name_is_refused_with_its_reason(tmp_path):
    from app.new_data_view import NewDataView

    created = []
    view = NewDataView(DataStore(tmp_path), JobManager(), created.append)
    for name in ("..", ".hidden.nc", "what?.nc"):
        view.import_bytes(name, b"not netcdf")
        assert view.failure.visible and "not a plain file name" in view.failure.object, name
    assert created == [] and list(tmp_path.iterdir()) == []


def test_the_interpolant_view_builds_paper_003_on_its_first_visit_and_draws_the_d_sweep():
    """The high-dimension section is built when opened, brings its own settings (and drops the dataset's), and,
    without a session, draws at once: the mixture's table, then steps at d = 10² … 10⁵ for each schedule, flat for
    the dilated grids and rising like √d for the uniform ones (paper 003's claim)."""
    import time

    from app.generation_views import SECTIONS, InterpolantView
    from app.mixture_panel import SWEEP_DIMENSIONS
    from app.plots import shared_mapper

    view = InterpolantView(shared_mapper(1.0), lambda: 0, lambda update: update())
    assert view.mixture is None and view.uses_generation_settings and view.controls() == []
    view.sections.active = SECTIONS[2]
    assert not view.uses_generation_settings and len(view.controls()) == 2  # the mixture's and the spins' settings
    assert "Here vp recovers σ²; vp_dilated recovers p and σ²" in view.mixture.table.object
    view.mixture.start_sweep()
    deadline = time.monotonic() + 120
    while view.mixture.sweep_button.loading and time.monotonic() < deadline:
        time.sleep(0.2)
    lines = {name: source.data["y"] for name, source in view.mixture.sweep.sources.items()}
    assert all(len(lines[kind]) == len(SWEEP_DIMENSIONS) for kind in lines)
    assert lines["vp"][-1] > 10 * lines["vp"][0] and lines["ve"][-1] > 10 * lines["ve"][0]  # ~√(1000) ≈ 32×
    assert lines["vp_dilated"][-1] < 2 * lines["vp_dilated"][0] and lines["ve_dilated"][-1] < 2 * lines["ve_dilated"][0]


def test_the_curie_weiss_panel_tabulates_what_each_schedule_recovers_and_draws_the_magnetization():
    """Without a session a run draws at once: the table's verdicts are read off its numbers (d = 10⁴, 32 steps:
    VP misses the phase, VE the spins), each M_t/d line ends at its samples' mean magnetization; a bad setting
    (k/√d ≥ 1) shows its reason in one line and frees the button."""
    from app.curie_weiss_panel import CurieWeissPanel

    panel = CurieWeissPanel()
    panel.config.d, panel.config.steps, panel.config.count = 10_000, 32, 200
    panel.start_run()
    text = panel.table.object
    assert not panel.run_button.loading and "d = 10000, J = 2, 32 Euler steps" in text
    assert "vp recovers the spins;" in text and "ve recovers the phase;" in text
    assert all(f"{kind} recovers the phase and the spins" in text for kind in ("vp_dilated", "ve_dilated"))
    lines = {name: source.data["y"] for name, source in panel.magnetization.sources.items()}
    assert len(lines["vp"]) == 33 and abs(lines["truth (2p − 1)m"][0] - 0.6 * 0.957504) < 1e-5
    assert lines["vp"][-1] > lines["vp_dilated"][-1] + 0.15  # VP puts nearly every sample in the + phase
    panel.config.d, panel.config.dilation_k = 10, 50.0
    panel.start_run()
    assert "Curie–Weiss could not run:** VP dilation needs 0 < k/√d < 1" in panel.table.object
    assert not panel.run_button.loading


def test_datasets_are_listed_by_title_and_results_written_by_jobs_apart(tmp_path):
    from app.dashboard import dataset_choices
    from app.jobs_view import outputs_table

    store = DataStore(tmp_path)
    kolmogorov, grf, lorenz, fine_dt, qg, allen_cahn = install_defaults(store)
    (tmp_path / "rollouts").mkdir()
    shutil.copyfile(store.path(kolmogorov), tmp_path / "rollouts" / "rollout-1.nc")
    choices = dataset_choices(store)
    assert choices[f"Kolmogorov 64² · 4 trajectories × 50 snapshots · Δt 0.5 ({kolmogorov})"] == kolmogorov
    assert choices[f"GRF 64² · 256 fields ({grf})"] == grf
    assert choices[f"QG jet 64² · 2 trajectories × 40 snapshots · Δt 3.6e+04 ({qg})"] == qg
    assert choices[f"Allen–Cahn 64² · 4 trajectories × 40 snapshots · Δt 2 ({allen_cahn})"] == allen_cahn
    assert list(choices.values()) == [allen_cahn, grf, kolmogorov, fine_dt, qg, lorenz]  # fields, then 1-D series
    assert "rollouts/rollout-1.nc" not in choices.values()
    assert "| rollouts/rollout-1.nc |" in outputs_table(store)


def test_sample_integrates_a_trained_generator_when_chosen_and_names_a_mismatch(tmp_path):
    """The Sample tab's *Drift*: the exact one by default, or a generator trained in the data folder (its samples,
    metrics and downloaded recipe name the run, never the machine's path); one trained with other noise is refused
    with the reason."""
    studio = Studio(store=DataStore(tmp_path))
    studio.dataset = next(name for name in studio.param.dataset.objects if name.startswith("grf-64"))
    studio.tab = "Sample"
    view = studio.view("Sample")
    shipped = "runs/shipped-grf-generator/checkpoint.pt"
    assert "analytic drift" in view.metrics.object and shipped in studio.param.drift.objects
    exact = view.result[0].samples.clone()
    studio.drift = shipped
    assert not studio.error.visible and "trained drift (shipped-grf-generator)" in view.metrics.object
    assert not torch.equal(view.result[0].samples, exact)
    with xr.open_dataset(view._samples_file()) as samples:
        assert samples.attrs["model"] == "checkpoint" and samples.attrs["checkpoint"] == shipped
    studio.noise.kind = "white"
    assert studio.error.visible and f"{shipped} was trained with noise" in studio.error.object
    assert str(tmp_path) not in studio.error.object


def test_sample_draws_the_chosen_field_of_the_qg_jet_and_samples_a_two_layer_generator_whole(tmp_path):
    """The generation tabs' *Field* on the two-layer QG set: the exact drift of the chosen layer (its own colour
    range), and a generator of both layers samples whole states, draws the chosen layer with its errors and the
    coherence error, and downloads both layers; the Train tab's preview of that generator draws the chosen layer."""
    from engine.cli import main

    shutil.copy("assets/qg-64-test.nc", tmp_path / "qg.nc")
    assert main(["--data-dir", str(tmp_path), "train", "--data", "qg.nc", "--task", "generate", "--out", "runs/g",
                 "--steps", "1", "--batch-size", "2"]) == 0
    studio = Studio(store=DataStore(tmp_path))
    studio.dataset = "qg.nc"
    studio.tab = "Sample"
    view, control = studio.view("Sample"), studio.generation.field_control
    assert control.visible and control.options == ["pv_upper", "pv_lower"] and control.value == "pv_upper"
    upper = studio.mapper.high - studio.mapper.low
    control.value = "pv_lower"
    assert studio.field == "pv_lower" and view.context.data.variable == "pv_lower"
    assert 10 < upper / (studio.mapper.high - studio.mapper.low) < 50  # the lower layer is 23× weaker
    exact = view.result[0]
    assert exact.samples.shape == (32, 64, 64) and "coherence" not in view.metrics.object
    assert "runs/g/checkpoint.pt" in studio.param.drift.objects
    studio.drift = "runs/g/checkpoint.pt"
    assert not studio.error.visible, studio.error.object
    drawn = view.result[0]
    assert drawn.samples.shape == (32, 64, 64) and view.states.samples.shape == (32, 2, 64, 64)
    torch.testing.assert_close(drawn.samples, view.states.samples[:, 1])
    assert drawn.errors["spectral_error"] == view.states.errors["pv_lower_spectral_error"]
    assert "pv_lower of states of pv_upper, pv_lower; coherence error" in view.metrics.object
    with xr.open_dataset(view._samples_file()) as samples:
        assert list(samples.attrs["variables"]) == ["pv_upper", "pv_lower"]
        assert samples["pv_lower"].shape == (32, 64, 64)
    studio.tab = "Compare"  # sampler B on the same two-layer generator, the same layer drawn
    compare = studio.view("Compare")
    assert not studio.error.visible, studio.error.object
    assert compare.b_plot.source.data["image"][0].shape == (64, 64) and "| B |" in compare.metrics.object
    train = TrainView(store=studio.store, jobs=JobManager(), dataset=lambda: "qg.nc",
                      generation_configs=lambda: (studio.noise, studio.schedule))
    preview = model_preview(make_task("generate", path=tmp_path / "qg.nc"), tmp_path / "runs/g/checkpoint.pt")
    field = downsampled(preview["field"])  # as the worker sends it
    train._show_event({"kind": "preview", "step": 1, **preview, "field": field})
    assert train.field_select.visible and train.param.field.objects == ["pv_upper", "pv_lower"]
    train.field = "pv_lower"
    np.testing.assert_array_equal(train.preview.source.data["image"][0], field[1])
    assert train.preview.figure.title.text.endswith(": pv_lower")
    drawn = train.spectrum.sources["data"].data["y"]
    held = np.isfinite(drawn)  # the plot leaves empty shells out
    np.testing.assert_allclose(drawn[held], preview["data_spectrum"][1][1:][held])


def test_each_tab_s_view_and_sidebar_are_made_once_so_revisits_leave_no_widget_linked_behind(tmp_path):
    """Widgets made from a parameter stay linked to it: a view or sidebar made anew at every visit would leave each
    old one updating with every change of the noise, schedule, samplers or dataset."""
    studio = Studio(store=DataStore(tmp_path))

    def links() -> int:
        return sum(len(watchers) for owner in (studio, studio.noise, studio.schedule, studio.sampler_a)
                   for kinds in owner.param.watchers.values() for watchers in kinds.values())

    for name in ("Sample", "Compare", "Sample"):
        studio.view(name)  # built here (a page builds them aside, then opens them)
        studio.tab = name
        studio.host.open(studio.tab)
    shown, before = (list(studio.host.sidebar), list(studio.host.panes["Sample"])), links()
    for _ in range(3):
        for name in ("Compare", "Sample"):
            studio.tab = name
            studio.host.open(studio.tab)
    assert links() == before  # no new links
    assert (list(studio.host.sidebar), list(studio.host.panes["Sample"])) == shown  # the same view and controls again


def test_a_change_while_a_view_is_being_built_waits_for_the_build_instead_of_blocking_the_event_loop(tmp_path):
    """The redraw a control asks for while another tab's view is being built aside is queued, not run against a
    half-built context (nor waited for on the event loop), and runs once the build is in."""
    studio = Studio(store=DataStore(tmp_path))
    studio.view("Sample")
    before = studio.host.views["Sample"].result
    studio.host.opening.add("Compare")  # Compare's view is being built on the page builder thread
    studio.sampler_a.steps = 3
    assert studio.host.views["Sample"].result is before and studio.pending == {"Sample", "Compare"}
    studio.host.attach_view("Compare", [])  # the build is in: the queued redraw runs
    assert studio.pending == set() and studio.host.views["Sample"].result is not before
    assert studio.host.views["Sample"].result[0].nfe == 3


def test_file_and_run_names_are_text_not_links_and_the_curie_weiss_table_is_a_table():
    """markdown-it's preset links anything shaped like a host name, and our names are: ``….nc`` (New Caledonia),
    ``….pt`` (Portugal). Text panes render them as text; the Curie–Weiss header's |M| no longer splits its cells."""
    import panel as pn

    from app.curie_weiss_panel import TABLE_HEADER

    names = "kolmogorov-64-b5a5fa4e.nc, runs/shipped-si-forecaster/checkpoint.pt and rollouts/rollout-5e8e5b15.zarr"
    for pane in (pn.pane.Markdown(names), pn.pane.Alert(f"**Training failed:** {names}")):
        assert "href" not in pane.get_root().text and "kolmogorov-64-b5a5fa4e.nc" in pane.get_root().text
    table = pn.pane.Markdown(TABLE_HEADER + "| vp | 0.800 | 0.500 | 1.000 |\n").get_root().text
    assert table.count("&lt;th&gt;") == 4 and "&lt;th&gt;|M|/d&lt;/th&gt;" in table


def test_a_request_the_engine_refuses_is_called_refused_not_failed(tmp_path):
    store = DataStore(tmp_path)
    kolmogorov, _, _, fine_dt, *_ = install_defaults(store)
    store.path(fine_dt).unlink()
    view = RolloutView(store, JobManager(), lambda: kolmogorov)
    view.checkpoint = "runs/shipped-pdd/checkpoint.pt"  # refused before a worker starts: the wrong Δt
    view.start()
    assert view.failure.object.startswith("**Rollout refused:**")
    view.fail("the worker exited with code -9 without a result")  # a crash, as a job's final event reports it
    assert view.failure.object.startswith("**Rollout failed:**")


def test_the_sidebar_shows_only_the_parameters_the_chosen_kind_uses(tmp_path):
    """Noise *Exponent* only for power-law noise; *R* only for the designed schedule, *Sigma max* for VE, *Dilation
    k* for the dilated ones; *Eps* only for the SDE, on a 0–5 slider."""
    import panel as pn

    from app.tabs import generation_controls

    studio = Studio(store=DataStore(tmp_path))

    def shown(pane) -> list[str]:
        return [widget.name for widget in pane.layout.objects if getattr(widget, "name", "")]

    noise, schedule = generation_controls(studio)
    assert "Exponent" not in shown(noise) and shown(schedule) == ["Kind"]
    studio.noise.kind, studio.schedule.kind = "powerlaw", "designed"
    assert "Exponent" in shown(noise) and shown(schedule) == ["Kind", "R"]
    studio.schedule.kind = "ve_dilated"
    assert shown(schedule) == ["Kind", "Sigma max", "Dilation k"]
    sampler = pn.Param(studio.sampler_b)
    eps = next(widget for widget in sampler.layout.objects if getattr(widget, "name", "") == "Eps")
    assert eps.end == 5.0 and "Integrator" not in shown(sampler)


def test_the_jobs_tab_labels_a_running_job_and_shows_it_chosen(tmp_path):
    """While a job runs, *Running job* shows it (not a blank choice), labelled by kind, run and dataset."""
    from app.jobs_view import JobsView
    from engine.config import ClusterConfig, ModelConfig, TrainingConfig
    from engine.pipelines.train import TrainRequest

    store = DataStore(tmp_path)
    _, grf, *_ = install_defaults(store)
    jobs = JobManager()
    job = jobs.submit(TrainRequest(data=grf, out="runs/x", model=ModelConfig(size="tiny"),
                                   training=TrainingConfig(steps=100000, batch_size=2, device="cpu")),
                      data_dir=str(store.root), threads=1)
    view = JobsView(jobs, store, ClusterConfig())
    try:
        assert view.running.value == job.id and view.running.labels == [f"1: train runs/x on {grf}"]
        assert f"| 1 | train | `runs/x` | `{grf}` |" in view.table.object
    finally:
        job.cancel()
        job.wait(60)


def test_the_jobs_tab_offers_a_finished_jobs_output_under_its_stored_name(tmp_path):
    """A finished data job (a real worker) is listed under *Finished job*; its download is the file it wrote,
    named as stored; once the file is gone the job is no longer offered."""
    from app.jobs_view import JobsView
    from engine.config import ClusterConfig, GRFConfig
    from engine.pipelines.generate_data import DataRequest

    store = DataStore(tmp_path)
    jobs = JobManager()
    view = JobsView(jobs, store, ClusterConfig())
    assert view.done.options == {} and view.download.disabled
    job = jobs.submit(DataRequest(generator="grf", config=GRFConfig(size=16, count=2), name="two.nc"),
                      data_dir=str(store.root), threads=1)
    assert job.wait(120) and job.state == "done"
    view.refresh(force=True)
    assert view.done.labels == ["1: data two.nc"] and view.done.value == job.id
    assert not view.download.disabled and view.download.filename == "two.nc"
    assert view._output_file() == str(tmp_path / "two.nc")
    (tmp_path / "two.nc").unlink()
    jobs.submit(DataRequest(generator="grf", config=GRFConfig(size=16, count=2), name="three.nc"),
                data_dir=str(store.root), threads=1).wait(120)
    view.refresh(force=True)
    assert view.done.labels == ["2: data three.nc"] and view.download.filename == "three.nc"


def test_the_rollout_view_draws_the_chosen_field_of_a_two_layer_emulator_with_its_own_range_and_scores(tmp_path):
    """A QG emulator of both layers: the Field control lists them, and choosing the lower layer redraws its frame,
    its colour range (its std is 23× the upper's smaller) and its VRMSE from the finished rollout."""
    from engine.cli import main

    store = DataStore(tmp_path)
    shutil.copy("assets/qg-64-test.nc", tmp_path / "qg.nc")
    assert main(["--data-dir", str(tmp_path), "train", "--data", "qg.nc", "--task", "pointwise", "--out", "runs/qg",
                 "--steps", "1", "--batch-size", "2"]) == 0
    view = RolloutView(store, JobManager(), lambda: "qg.nc")
    view.checkpoint = "runs/qg/checkpoint.pt"
    assert view.param.field.objects == ["pv_upper", "pv_lower"] and view.field == "pv_upper"  # before any rollout
    view.prepare()
    assert view.param.field.objects == ["pv_upper", "pv_lower"] and view.field == "pv_upper"
    upper_range = view.mapper.high - view.mapper.low
    view.config.steps = 3
    view.start()  # the real job, in a worker process
    assert view.job.wait(120)
    view.poll()
    result = view.job.result
    assert view.emulator_plot.source.data["image"][0].shape == (64, 64)
    with xr.open_dataset(tmp_path / result["out"]) as ds:
        last = ds["pv_lower"].isel(member=0, time=-1).values
    view.field = "pv_lower"
    torch.testing.assert_close(torch.as_tensor(view.emulator_plot.source.data["image"][0]), torch.as_tensor(last))
    assert 10 < upper_range / (view.mapper.high - view.mapper.low) < 50
    assert list(view.vrmse.sources["this run"].data["y"]) == result["per_variable"]["pv_lower"]["vrmse"]
    later = RolloutView(store, view.jobs, lambda: "qg.nc")  # a page opened after the job: its result, its settings
    later.poll()
    assert later.job is view.job and not later.download.disabled and later.download.filename == Path(result["out"]).name
    assert later.param.field.objects == ["pv_upper", "pv_lower"] and later.job_settings.visible
    assert "`checkpoint runs/qg/checkpoint.pt`" in later.job_settings.object and "`config.steps 3`" in \
        later.job_settings.object


def test_placeholders_are_readable_text_of_at_least_4_5_to_1_contrast():
    """WCAG AA's contrast ratio (L₁ + 0.05)/(L₂ + 0.05) of relative luminances, text against its own box."""
    from app.plots import PLACEHOLDER_BACKGROUND, PLACEHOLDER_TEXT

    def luminance(colour: str) -> float:
        channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(PLACEHOLDER_BACKGROUND), luminance(PLACEHOLDER_TEXT)), reverse=True)
    assert (light + 0.05) / (dark + 0.05) >= 4.5
