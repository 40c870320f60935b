"""The real dashboard in a real browser (Playwright + system Chromium)."""
import re
from html import unescape

import pytest

pytestmark = pytest.mark.browser

SPECTRUM_JS = """(title) => {
  const doc = Bokeh.documents[0];
  const fig = doc.get_model_by_name(title);
  const out = {};
  for (const r of fig.renderers) if (r.name && r.data_source.data.y) out[r.name] = Array.from(r.data_source.data.y);
  return out;
}"""


def _open(page, url):
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda request: errors.append(f"request failed: {request.url}"))  # e.g. a CDN asset
    page.goto(url)
    page.wait_for_function(FIRST_SCREEN_JS, timeout=60000)
    page.wait_for_timeout(500)
    return errors


def _tab(page, name, figure=None):
    """Open a tab; with ``figure``, wait until that figure of its view is in the document (views build lazily)."""
    page.locator(".bk-tab", has_text=name).click()
    page.wait_for_function("""(name) => {  // the tab is open and its view has replaced the "Opening …" note
      const tabs = [...Bokeh.documents[0]._all_models.values()]
        .find(m => m.type === 'panel.models.tabs.Tabs' && m.tabs.some(t => t.title === 'Data'));
      const pane = tabs.tabs[tabs.active];
      const first = pane.child.children?.[0];
      return pane.title === name && first !== undefined && !(first.text ?? '').includes('Opening');
    }""", arg=name, timeout=60000, polling=100)
    if figure is not None:
        page.wait_for_function("(name) => Bokeh.documents[0].get_model_by_name(name) !== null", arg=figure,
                               timeout=60000)


def _section(page, title, figure=None):
    """Open a section of the open tab (the Interpolant's sections build on their first visit)."""
    page.locator(".bk-tab", has_text=title).click()
    if figure is not None:
        page.wait_for_function("(name) => Bokeh.documents[0].get_model_by_name(name) !== null", arg=figure,
                               timeout=60000)


FIRST_SCREEN_JS = """() => {
  if (!window.Bokeh || Bokeh.documents.length === 0 || !Bokeh.documents[0].is_idle) return false;
  const fig = Bokeh.documents[0].get_model_by_name('radial power spectrum of the snapshot');
  return fig !== null && fig.renderers.some(r => r.name === 'data' && r.data_source.data.y.length > 0);
}"""


def _spectra(page, title):
    return page.evaluate(SPECTRUM_JS, title)


def _choose_dataset(page, prefix):
    """The sidebar's dataset control shows titles; the file name is in brackets at the end."""
    select = page.locator(".bk-input-group", has_text="Dataset").locator("select").first
    titles = select.evaluate("(el) => Array.from(el.options).map(o => o.value)")
    select.select_option(next(title for title in titles if f"({prefix}" in title))


def test_the_sample_and_interpolant_views_show_the_exact_drift_s_numbers(page, server_url):
    errors = _open(page, server_url)
    page.set_viewport_size({"width": 1500, "height": 1000})
    _tab(page, "Sample", "radial power spectrum")
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('radial power spectrum').renderers"
                           ".some(r => r.name === 'generated' && r.data_source.data.y.length > 0)", timeout=60000)
    spectra = _spectra(page, "radial power spectrum")
    assert len(spectra["data"]) == 32 and len(spectra["generated"]) == 32  # shells 1..N/2 on 64²
    _tab(page, "Interpolant", "spectra along the path")
    _section(page, "Drift per noise", "exact drift norm ‖b(t, x_t)‖ per noise")
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('exact drift norm ‖b(t, x_t)‖ per noise')"
                           ".renderers.every(r => !r.name || r.data_source.data.y.length > 0)", timeout=60000)
    norms = _spectra(page, "exact drift norm ‖b(t, x_t)‖ per noise")
    assert set(norms) == {"white", "powerlaw", "matched"} and all(len(y) == 200 for y in norms.values())
    # matched noise on the linear path: x0 and x1 are exchangeable Gaussians, so E[x1 − x0 | x_1/2] = 0 exactly
    assert min(norms["matched"]) < 1e-6 and min(norms["white"]) > 1
    assert errors == []


def test_the_mixture_text_agrees_with_its_numbers_for_all_four_schedules(page, server_url):
    """Paper 003 at the defaults (d = 10⁴, 64 steps): each ✓/✗ in the table and the sentence under it say the same,
    and they say what the paper claims: uniform VP misses p, uniform VE misses σ², the dilated grids get both."""
    errors = _open(page, server_url)
    _tab(page, "Interpolant")
    _section(page, "High dimension (paper 003)")
    find = ("() => [...Bokeh.documents[0]._all_models.values()].map(m => m.text)"
            ".find(t => typeof t === 'string' && t.includes('Which features survive'))")
    page.wait_for_function(find, timeout=20000)
    html = unescape(page.evaluate(find))  # the Markdown pane ships its HTML escaped
    text = re.sub(r"<[^>]+>", " ", html)
    expected = {"vp": "σ²", "vp_dilated": "p and σ²", "ve": "p", "ve_dilated": "p and σ²"}
    assert "Here " + "; ".join(f"{kind} recovers {features}" for kind, features in expected.items()) in text
    marks = {kind: re.findall(r"[✓✗]", re.search(rf"<td>{kind}</td>(.*?)</tr>", html, re.S).group(1))
             for kind in expected}
    assert marks == {
        "vp": ["✗", "✓"], "vp_dilated": ["✓", "✓"], "ve": ["✓", "✗"], "ve_dilated": ["✓", "✓"]}
    assert errors == []


def test_the_curie_weiss_run_finishes_in_the_background_and_draws_its_table_and_magnetization(page, server_url):
    """In a live session the run goes to a thread and comes back on the session's thread: the table's four rows,
    a verdict per schedule, and a magnetization line of steps + 1 points per schedule (defaults: d = 3000, 32)."""
    errors = _open(page, server_url)
    _tab(page, "Interpolant")
    _section(page, "High dimension (paper 003)")
    page.get_by_role("button", name="Run Curie–Weiss").click()
    find = ("() => [...Bokeh.documents[0]._all_models.values()].map(m => m.text)"
            ".find(t => typeof t === 'string' && t.includes('Curie–Weiss, d = 3000'))")
    page.wait_for_function(find, timeout=120000)  # beside the mixture table the section measures on opening
    text = re.sub(r"<[^>]+>", " ", unescape(page.evaluate(find)))
    assert all(f"{kind} recovers" in text for kind in ("vp", "vp_dilated", "ve", "ve_dilated"))
    lengths = page.evaluate("""() => {
      const fig = Bokeh.documents[0].get_model_by_name('mean magnetization M_t/d over t (Curie–Weiss)');
      return fig.renderers.map(r => r.data_source.data.y ? r.data_source.data.y.length : 0);
    }""")
    assert lengths.count(33) >= 4 and 2 in lengths  # four schedules over 32 steps, the truth as a level line
    assert errors == []


def test_noise_control_changes_the_plotted_spectrum_and_warns_when_too_smooth(page, server_url):
    _open(page, server_url)
    _tab(page, "Sample", "radial power spectrum")
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('radial power spectrum').renderers"
                           ".some(r => r.name === 'noise' && r.data_source.data.y.length > 0)", timeout=60000)
    kolmogorov = _spectra(page, "radial power spectrum")["data"]
    _choose_dataset(page, "grf")  # Gaussian fields with spectrum |k|^-6: power-law noise p = 12 is smoother
    page.wait_for_function("""(old) => {
      const fig = Bokeh.documents[0].get_model_by_name('radial power spectrum');
      return fig.renderers.find(r => r.name === 'data').data_source.data.y[0] !== old[0];
    }""", arg=kolmogorov, timeout=20000)  # the Sample view has redrawn on the GRF set
    page.wait_for_timeout(300)
    before = _spectra(page, "radial power spectrum")["noise"]
    page.get_by_role("button", name="white", exact=True).click()
    page.wait_for_function("""(before) => {
      const fig = Bokeh.documents[0].get_model_by_name('radial power spectrum');
      const y = fig.renderers.find(r => r.name === 'noise').data_source.data.y;
      return y.length === before.length && y[29] !== before[29];
    }""", arg=before, timeout=20000)
    after = _spectra(page, "radial power spectrum")["noise"]
    assert after[29] > 100 * before[29]  # white noise puts far more power at k = 30 than matched noise
    # power-law noise steeper than the data is smoother than the data: the page says why that is bad
    page.get_by_role("button", name="powerlaw", exact=True).click()
    handle = page.locator(".bk-input-group", has_text="Exponent").locator(".noUi-handle").first
    handle.focus()
    handle.press("End")  # the slider's maximum, p = 12: far steeper than the data's |k|^-6
    page.get_by_text("smoother than the data").wait_for(timeout=20000)


def test_compare_view_shows_two_samples_with_metrics(page, server_url):
    _open(page, server_url)
    _tab(page, "Compare", "spectra: A, B and the data")
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('spectra: A, B and the data').renderers"
                           ".some(r => r.name === 'B' && r.data_source.data.y.length > 0)", timeout=60000)
    spectra = _spectra(page, "spectra: A, B and the data")
    assert len(spectra["A"]) == len(spectra["B"]) == 32 and spectra["A"] != spectra["B"]
    metrics = page.locator(".markdown", has_text="spectral error").last
    assert "| A |" in metrics.inner_html() or metrics.get_by_text("A").count() > 0


def test_a_bad_combination_shows_its_reason(page, server_url):
    _open(page, server_url)
    _tab(page, "Sample", "radial power spectrum")
    kind = page.locator(".bk-input-group", has_text="Kind").locator("select").first
    kind.select_option("ve_dilated")
    handle = page.locator(".bk-input-group", has_text="Dilation k").locator(".noUi-handle").first
    handle.focus()
    handle.press("End")  # k = 1000 > √d = 64 on 64² fields
    page.get_by_text("VE dilation needs 0 < k/σ_max < 1").wait_for(timeout=20000)


def test_data_view_plays_through_time_and_coarse_grains_at_lambda(page, server_url, artifacts):
    errors = _open(page, server_url)
    page.get_by_text("keep half their amplitude").first.wait_for(timeout=20000)
    title = "radial power spectrum of the snapshot"
    first = _spectra(page, title)
    assert len(first["data"]) == 32 and len(first["time mean"]) == 32
    # λ = 0.02 keeps the coarse field close to the original at large scales and replaces fine ones by noise
    assert abs(first["coarse"][0] / first["data"][0] - 1) < 0.5
    handle = page.locator(".bk-input-group", has_text="Diffusion scale").locator(".noUi-handle").first
    handle.focus()
    handle.press("End")  # λ = 1: every shell but the largest ones is noise ∝ 1/k²
    page.get_by_text("At λ = 1 ").wait_for(timeout=20000)
    page.wait_for_function("""([title, old]) => {
      const fig = Bokeh.documents[0].get_model_by_name(title);
      return fig.renderers.find(r => r.name === 'coarse').data_source.data.y[0] !== old[0];
    }""", arg=[title, first["coarse"]], timeout=20000)  # the spectrum is a patch of its own, after the text
    coarse = _spectra(page, title)["coarse"]
    assert coarse != first["coarse"] and coarse[0] < first["data"][0]
    # the player advances the time index and redraws the snapshot
    before = first["data"]
    found = page.evaluate("""() => {
      const player = [...Bokeh.documents[0].all_models].find(m => m.constructor.__name__ === 'Player');
      if (player) player.value = 7;
      return player !== undefined;
    }""")
    assert found
    page.get_by_text("t = 54.00").wait_for(timeout=20000)
    page.wait_for_function("""([title, old]) => {
      const fig = Bokeh.documents[0].get_model_by_name(title);
      return fig.renderers.find(r => r.name === 'data').data_source.data.y[0] !== old[0];
    }""", arg=[title, before], timeout=20000)  # the snapshot's spectrum is a patch of its own, after the text
    assert _spectra(page, title)["data"] != before
    page.screenshot(path=str(artifacts / "dashboard-data-lambda.png"))
    assert errors == []


def test_lorenz96_shows_as_hovmoller_diagrams_with_line_spectra(page, server_url, artifacts):
    errors = _open(page, server_url)
    page.set_viewport_size({"width": 1500, "height": 1000})
    _choose_dataset(page, "lorenz96")
    page.get_by_text("1-D series: shown in the Data view").wait_for(timeout=20000)
    page.get_by_text("noise ∝ 1/k² in 1-D").wait_for(timeout=20000)
    # the figure's visibility and its image arrive in their own patches, not always with the text: wait for them
    page.wait_for_function("""() => {
      const fig = Bokeh.documents[0].get_model_by_name('Hovmöller: series');
      return fig.visible && fig.renderers[0].data_source.data.dh[0] > 1;  // the placeholder image spans 1
    }""", timeout=20000)
    shape = page.evaluate("""() => {
      const fig = Bokeh.documents[0].get_model_by_name('Hovmöller: series');
      const image = fig.renderers[0].data_source.data.image[0];
      return [fig.visible, image.length, image[0].length ?? null, fig.renderers[0].data_source.data.dh[0]];
    }""")
    # 400 saved times of K = 32 slow variables (Bokeh ships 2-D arrays flat with their shape)
    assert shape[0] is True and shape[3] == pytest.approx(19.95)
    spectra = _spectra(page, "radial power spectrum of the snapshot")  # the figure's name; its title says "line"
    assert len(spectra["data"]) == 16 and len(spectra["time mean"]) == 16  # sites k = 1..K/2
    title = page.evaluate("() => Bokeh.documents[0].get_model_by_name('radial power spectrum of the "
                          "snapshot').title.text")
    assert title == "line power spectrum of the snapshot"
    page.screenshot(path=str(artifacts / "dashboard-lorenz96.png"))
    assert errors == []


def test_a_new_dataset_generated_at_another_resolution_feeds_every_view(page, server_url):
    errors = _open(page, server_url)
    page.get_by_text("New dataset").first.click()  # the collapsed card in the sidebar
    size = page.locator(".bk-input-group", has_text="Size").locator("input").first
    size.fill("32")
    size.press("Enter")
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("Made grf-32-").wait_for(timeout=60000)
    select = page.locator(".bk-input-group", has_text="Dataset").locator("select").first
    for _ in range(100):  # the new set is chosen, shown by its title
        if select.input_value().startswith("GRF 32² · 64 fields (grf-32-"):
            break
        page.wait_for_timeout(200)
    assert select.input_value().startswith("GRF 32² · 64 fields (grf-32-")
    _tab(page, "Sample", "radial power spectrum")
    page.wait_for_function("""() => {
      const fig = Bokeh.documents[0].get_model_by_name('radial power spectrum');
      return fig.renderers.find(r => r.name === 'generated').data_source.data.y.length === 16;
    }""", timeout=20000)  # sampled at the new resolution: shells 1..16
    assert errors == []


def test_a_training_job_grows_the_loss_curve_live_and_can_be_cancelled(page, server_url, artifacts):
    errors = _open(page, server_url)
    page.set_viewport_size({"width": 1500, "height": 1000})
    _tab(page, "Train", "training loss")
    for label, value in (("Batch size", "4"), ("Log every", "2")):
        _fill(page, label, value)
    page.get_by_role("button", name="Start").click()
    page.wait_for_function("""() => {
      const fig = Bokeh.documents[0].get_model_by_name('training loss');
      return fig.renderers.find(r => r.name === 'loss').data_source.data.x.length >= 3;
    }""", timeout=150000)
    page.get_by_text("steps/s").first.wait_for(timeout=10000)
    page.screenshot(path=str(artifacts / "dashboard-train.png"))
    page.get_by_role("button", name="Cancel").click()
    page.get_by_text("cancelled: Resume continues").wait_for(timeout=20000)
    page.locator("table", has_text="my-run").wait_for(timeout=10000)  # the checkpoint list shows the run
    assert errors == []


def _fill(page, label, value):
    box = page.locator(".bk-input-group", has_text=label).locator("input").first
    box.fill(value)
    box.press("Enter")


def test_a_two_seed_group_trains_and_its_rollout_draws_the_spread_over_the_seeds(page, server_url):
    """Train with Seeds 2 makes a group (runs/<name>/seed-0, seed-1); rolled out from the Rollout tab, the VRMSE
    plot draws the seeds' mean with their min–max band, which is not empty past lead 0."""
    errors = _open(page, server_url)
    page.set_viewport_size({"width": 1500, "height": 1000})
    _tab(page, "Train", "training loss")
    page.locator(".bk-input-group", has_text="Task").locator("select").first.select_option("pointwise")
    page.locator(".bk-input-group", has_text="Run name").locator("input").first.fill("two-seeds")
    for label, value in (("Seeds", "2"), ("Steps", "4"), ("Batch size", "2"), ("Log every", "2")):
        _fill(page, label, value)
    page.get_by_role("button", name="Start").click()
    page.get_by_text(re.compile(r"Training job \d+ finished")).wait_for(timeout=150000)
    _tab(page, "Rollout", "VRMSE vs lead time")
    page.locator(".bk-input-group", has_text="Emulator checkpoint").locator("select").first.select_option(
        "runs/two-seeds")
    _fill(page, "Rollout steps", "4")
    page.get_by_role("button", name="Roll out").click()
    page.get_by_text("A group of 2 seeds").wait_for(timeout=150000)
    band = page.wait_for_function("""() => {
      const data = Bokeh.documents[0].get_model_by_name('VRMSE vs lead time').renderers
        .find(r => r.name === 'min–max over seeds')?.data_source.data;
      return data && data.x.length === 5 ? [Array.from(data.lower), Array.from(data.upper)] : null;
    }""", timeout=20000).json_value()
    lower, upper = band
    assert all(low <= high for low, high in zip(lower, upper)) and upper[1] > lower[1]
    assert errors == []


def test_the_rollout_view_rolls_a_shipped_emulator_out_live(page, server_url, artifacts):
    errors = _open(page, server_url)
    page.set_viewport_size({"width": 1500, "height": 1000})
    _tab(page, "Rollout", "VRMSE vs lead time")
    steps = page.locator(".bk-input-group", has_text="Rollout steps").locator("input").first
    for _ in range(5):  # the widget's model holds 24 before the click (a tab still rendering can drop a fill)
        steps.fill("24")
        steps.press("Enter")
        if page.evaluate("""() => [...Bokeh.documents[0].all_models]
                              .some(m => m.title === "Rollout steps" && m.value === 24)"""):
            break
        page.wait_for_timeout(500)
    else:
        pytest.fail("the Rollout steps box never held 24")
    page.get_by_role("button", name="Roll out").click()
    page.get_by_text("starting a worker").first.wait_for(timeout=30000)  # not an earlier rollout's result
    page.get_by_text("No blow-up").wait_for(timeout=120000)
    # the status text and the curves are separate document patches: wait until the curves have arrived too
    for figure, line in (("VRMSE vs lead time", "this run"), ("C(τ) at r = 0", "emulator"), ("C(τ) at r = 0", "truth")):
        page.wait_for_function("""([figure, line]) => Bokeh.documents[0].get_model_by_name(figure).renderers
          .find(r => r.name === line).data_source.data.y.length > 0""", arg=[figure, line], timeout=20000)
    vrmse = _spectra(page, "VRMSE vs lead time")["this run"]
    assert len(vrmse) == 25 and vrmse[0] == 0 and 0 < vrmse[1] < 1  # one step ahead beats a random field
    correlation = _spectra(page, "C(τ) at r = 0")
    assert correlation["emulator"][0] == pytest.approx(1) and correlation["truth"][0] == pytest.approx(1)
    page.screenshot(path=str(artifacts / "dashboard-rollout.png"))
    assert errors == []


def test_samples_and_rollouts_download_as_netcdf(page, server_url, tmp_path):
    import xarray as xr

    _open(page, server_url)
    _tab(page, "Sample", "radial power spectrum")
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('radial power spectrum').renderers"
                           ".some(r => r.name === 'generated' && r.data_source.data.y.length > 0)", timeout=60000)
    with page.expect_download() as info:
        page.get_by_text("Download samples (netCDF)").click()
    path = tmp_path / "samples.nc"
    info.value.save_as(path)
    samples = xr.open_dataset(path, engine="h5netcdf")
    assert samples["vorticity"].dims == ("sample", "y", "x") and samples.attrs["sampler_steps"] == 16
    _tab(page, "Rollout", "VRMSE vs lead time")
    page.get_by_role("button", name="Roll out").click()
    page.get_by_text("starting a worker").first.wait_for(timeout=30000)  # not an earlier rollout's result
    page.get_by_text("No blow-up").wait_for(timeout=120000)
    with page.expect_download() as info:
        page.get_by_text("Download rollout (netCDF)").click()
    info.value.save_as(tmp_path / "rollout.nc")
    rollout = xr.open_dataset(tmp_path / "rollout.nc", engine="h5netcdf")
    assert rollout["vorticity"].dims == ("member", "time", "y", "x") and rollout.attrs["steps_done"] == 100
    assert rollout["vorticity_truth"].dims == ("trajectory", "time", "y", "x")
    from PIL import Image

    for suffix in ("GIF", "MP4"):
        with page.expect_download() as info:
            page.get_by_text(f"Download animation ({suffix})").click()
        info.value.save_as(tmp_path / f"rollout.{suffix.lower()}")
    assert Image.open(tmp_path / "rollout.gif").n_frames == 101  # the start and 100 steps, truth beside member 0
    assert (tmp_path / "rollout.mp4").read_bytes()[4:8] == b"ftyp"


def test_save_view_as_png_draws_every_plot_of_the_active_tab(page, server_url, artifacts):
    import numpy as np
    from PIL import Image

    errors = _open(page, server_url)
    page.set_viewport_size({"width": 1500, "height": 1000})
    _tab(page, "Compare", "A − B")
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('spectra: A, B and the data').renderers"
                           ".some(r => r.name === 'B' && r.data_source.data.y.length > 0)", timeout=60000)
    page.wait_for_timeout(500)
    with page.expect_download() as info:
        page.get_by_role("button", name="Save view as PNG").click()
    assert info.value.suggested_filename == "emulator-studio-compare.png"
    info.value.save_as(artifacts / "saved-view-compare.png")
    image = np.asarray(Image.open(artifacts / "saved-view-compare.png").convert("RGB"))
    # three 300² fields over two 420 × 300 plots: at least that much canvas, and far from blank
    assert image.shape[1] >= 880 and image.shape[0] >= 580
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 500
    assert errors == []


def test_the_superres_view_redraws_the_input_at_lambda_and_super_resolves_live(page, server_url, artifacts, tmp_path):
    import xarray as xr

    from engine.config import KolmogorovConfig
    from engine.data.catalog import SHIPPED_KOLMOGOROV_FINE, cached_name

    errors = _open(page, server_url)
    page.set_viewport_size({"width": 1500, "height": 1000})
    _tab(page, "Super-resolution", "power spectra (mean over the sequence)")
    page.get_by_text("λ = 0.1: modes up to").wait_for(timeout=20000)
    # the sidebar's dataset is saved every 0.5; the shipped predictor's data, every 0.02, is picked instead
    data = page.locator(".bk-input-group", has_text="Data (grid and Δt as trained)").locator("select")
    assert data.input_value() == cached_name(KolmogorovConfig(**SHIPPED_KOLMOGOROV_FINE))
    assert data.locator("option").count() == 1
    title = "power spectra (mean over the sequence)"
    before = _spectra(page, title)
    # shells 31-32, past the data's dealiasing cutoff (a gap in the truth's line), hold the coarse input's noise
    assert len(before["truth"]) == 32 and before["truth"][-1] != before["truth"][-1] and before["coarse input"][-1] > 0
    steps = page.locator(".bk-input-group", has_text="λ steps").locator("input").first
    steps.fill("12")
    steps.press("Enter")
    for control, option in (("Integrator", "gaussian"), ("Grid", "geometric"), ("Variance", "spectral")):
        group = page.locator(".bk-input-group", has_text=re.compile(f"^{control}"))  # our options: fit for 12 steps
        group.locator("select").first.select_option(option)
    slider = page.locator(".bk-input-group", has_text="Diffusion scale").filter(visible=True)
    handle = slider.locator(".noUi-handle").first
    handle.focus()
    handle.press("ArrowLeft")  # λ 0.1 → 0.095: the coarse input is redrawn at once, before any job
    page.get_by_text("λ = 0.095: modes up to").wait_for(timeout=20000)
    # the status text and the spectrum are separate document patches: wait until the new spectrum has arrived too
    page.wait_for_function("""([title, old]) => {
      const fig = Bokeh.documents[0].get_model_by_name(title);
      const y = Array.from(fig.renderers.find(r => r.name === 'coarse input').data_source.data.y);
      return JSON.stringify(y) !== JSON.stringify(old);
    }""", arg=[title, before["coarse input"]], timeout=20000)
    assert _spectra(page, title)["coarse input"] != before["coarse input"]
    page.get_by_role("button", name="Super-resolve").click()
    page.get_by_text("Super-resolved λ = 0.095 → 0 in 12 steps").wait_for(timeout=120000)
    after = _spectra(page, title)
    truth, coarse, output = (after[line][22:30] for line in ("truth", "coarse input", "super-resolved"))  # k 23-30
    # the finest shells move from the coarse input's noise toward the truth
    assert sum(abs(o - t) for o, t in zip(output, truth)) < sum(abs(c - t) for c, t in zip(coarse, truth))
    page.screenshot(path=str(artifacts / "dashboard-superres.png"))
    with page.expect_download() as info:
        page.get_by_text("Download result (netCDF)").click()
    info.value.save_as(tmp_path / "superres.nc")
    result = xr.open_dataset(tmp_path / "superres.nc", engine="h5netcdf")
    assert result["vorticity"].dims == ("sequence", "frame", "y", "x") and float(result["lam"]) == 0.095
    assert errors == []


def test_an_input_out_of_its_bounds_is_explained_not_silently_put_back(page, server_url):
    """Train's Steps typed as −5 and Batch size as 100000: each gets a one-line warning naming the control and its
    bound, the box shows the kept value again, and the server logs no error."""
    errors = _open(page, server_url)
    page.set_viewport_size({"width": 1500, "height": 1000})
    _tab(page, "Train", "training loss")
    for label, value, said in (("Steps", "-5", "Steps must be at least 1, not -5"),
                               ("Batch size", "100000", "Batch size must be at most 4096, not 100000")):
        box = page.locator(".bk-input-group", has_text=label).locator("input").first
        kept = box.input_value()
        box.fill(value)
        box.press("Enter")
        page.get_by_text(said).first.wait_for(timeout=20000)
        page.wait_for_function("([box, kept]) => box.value === kept", arg=[box.element_handle(), kept],
                               timeout=10000)
    assert errors == []


def test_the_sample_tabs_steps_are_above_the_fold_of_a_1000_pixel_screen(page, server_url):
    _open(page, server_url)
    page.set_viewport_size({"width": 1600, "height": 1000})
    _tab(page, "Sample", "radial power spectrum")
    steps = page.locator(".bk-input-group", has_text="Steps").locator("input").first
    steps.wait_for(timeout=20000)
    box = steps.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 1000, box
