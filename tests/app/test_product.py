"""The dashboard as a product, in a real browser: it fits the screen, says when it is busy, keeps its jobs across
reloads, reopens from a link, and its plots can be read (colour bars, hover values, spectra over held shells)."""
import re

import pytest
from playwright.sync_api import expect

from app.generation_views import SECTIONS
from tests.app.test_dashboard import _open, _spectra, _tab

pytestmark = pytest.mark.browser

TABS = ("Data", "Interpolant", "Sample", "Compare", "Train", "Rollout", "Super-resolution", "Jobs")
LAYOUT_JS = """() => {
  // every rendered model's box: figures, and widgets (anything with 'disabled' that holds no other models)
  const boxes = {plots: [], widgets: []};
  for (const model of Bokeh.documents[0]._all_models.values()) {
    const view = Bokeh.index.find_one(model);
    if (view == null || view.el == null) continue;
    const r = view.el.getBoundingClientRect();  // only what is shown: the other tabs' views stay in the page
    if (r.width < 1 || r.height < 1 || !view.el.checkVisibility({visibilityProperty: true})) continue;
    const box = [model.name || model.type, r.left, r.top, r.right, r.bottom];
    if ('renderers' in model && 'toolbar' in model) boxes.plots.push(box);
    else if ('disabled' in model && !('children' in model) && !('tabs' in model) && !('objects' in model)
             && model.type !== 'Spacer')
      boxes.widgets.push(box);
  }
  return {boxes, scroll: document.documentElement.scrollWidth, inner: innerWidth};
}"""
TABS_BOX_JS = """() => {  // the main tab strip: its pane's right edge, and whether its tab bar fits its width
  const model = [...Bokeh.documents[0]._all_models.values()]
    .find(m => m.type === 'panel.models.tabs.Tabs' && m.tabs.some(t => t.title === 'Data'));
  const view = Bokeh.index.find_one(model);
  const header = view.shadow_el.querySelector('.bk-header');
  return {right: view.el.getBoundingClientRect().right, header: [header.scrollWidth, header.clientWidth]};
}"""
LOADING_JS = ("() => [...Bokeh.documents[0]._all_models.values()]"
              ".some(m => Array.isArray(m.css_classes) && m.css_classes.includes('pn-loading'))")
FIGURES_JS = """() => {
  const out = [];
  for (const model of Bokeh.documents[0]._all_models.values()) {
    if (!('renderers' in model && 'toolbar' in model)) continue;
    const view = Bokeh.index.find_one(model);
    if (view == null || view.el.getBoundingClientRect().width < 1 || !view.el.checkVisibility()) continue;
    const image = model.renderers.some(r => r.glyph && r.glyph.type === 'Image');
    const colorbar = [...model.right, ...model.center].some(m => m.type === 'ColorBar');
    const hover = model.toolbar.tools.some(t => t.type === 'HoverTool');
    const log = model.y_scale.type === 'LogScale';
    const ys = model.renderers.filter(r => r.name).flatMap(r => Array.from(r.data_source.data.y ?? []))
      .filter(y => Number.isFinite(y) && y > 0);
    out.push({name: model.name, image, colorbar, hover, log, ys: ys.length ? [Math.min(...ys), Math.max(...ys)] : []});
  }
  return out;
}"""


def _settled(page, tab):
    """Open a tab and wait until its view is built and drawn: the "Opening …" note replaced, no loading overlay
    on the tab's pane (the document may still hold detached models for a while: only the open pane counts)."""
    _tab(page, tab)
    page.wait_for_function("""() => {
      const tabs = [...Bokeh.documents[0]._all_models.values()]
        .find(m => m.type === 'panel.models.tabs.Tabs' && m.tabs.some(t => t.title === 'Data'));
      return !tabs.tabs[tabs.active].child.css_classes.includes('pn-loading');
    }""", timeout=60000, polling=100)
    page.wait_for_timeout(500)


def _settled_section(page, title):
    """Open a section of the Interpolant tab and wait until it is built and drawn."""
    page.locator(".bk-tab", has_text=title).click()
    page.wait_for_function("""(title) => {
      const tabs = [...Bokeh.documents[0]._all_models.values()]
        .find(m => m.type === 'panel.models.tabs.Tabs' && m.tabs.some(t => t.title === title));
      const pane = tabs.tabs[tabs.active];
      const first = pane.child.children?.[0];
      return pane.title === title && first !== undefined && !(first.text ?? '').includes('Opening')
        && !pane.child.css_classes.includes('pn-loading');
    }""", arg=title, timeout=60000, polling=100)
    page.wait_for_timeout(500)


def _views(page):
    """Every tab, and every section of the Interpolant tab, opened in turn: yields each one's label."""
    for tab in TABS:
        _settled(page, tab)
        if tab != "Interpolant":
            yield tab
            continue
        for section in SECTIONS:
            _settled_section(page, section)
            yield f"{tab}: {section}"


def _overlaps(a, b) -> bool:
    return min(a[3], b[3]) - max(a[1], b[1]) > 1 and min(a[4], b[4]) - max(a[2], b[2]) > 1


def _check_layout(page, tab: str, width: int, height: int) -> list:
    """The window does not scroll sideways, the tab bar fits, no widget lies over a plot, and the plots use the
    width (the rightmost ends within 40 px of the tab's right edge); returns the plots' boxes."""
    layout, tabs = page.evaluate(LAYOUT_JS), page.evaluate(TABS_BOX_JS)
    assert layout["scroll"] <= layout["inner"], f"{tab}: {layout['scroll']} px wide in a {width} px window"
    assert tabs["header"][0] <= tabs["header"][1], f"{tab} at {width}×{height}: the tab bar overflows {tabs}"
    clashes = [(w[0], p[0]) for w in layout["boxes"]["widgets"] for p in layout["boxes"]["plots"] if _overlaps(w, p)]
    assert clashes == [], f"{tab} at {width}×{height}: widgets over plots {clashes}"
    plots = layout["boxes"]["plots"]
    if plots:
        right, edge = max(box[3] for box in plots), tabs["right"]
        assert right >= edge - 40, f"{tab} at {width}×{height}: plots end at {right:.0f} of {edge:.0f} px"
    return plots


def _check_figures(tab: str, figures: list) -> set:
    """Hover values on every figure, a colour bar on every image, and spectra over at most 12 decades; returns
    the names of the spectra checked."""
    checked = set()
    for fig in figures:
        assert fig["hover"], f"{tab}: {fig['name']} has no hover tool"
        if fig["image"]:
            assert fig["colorbar"], f"{tab}: {fig['name']} has no colour bar"
        if fig["log"] and fig["ys"] and "spectr" in fig["name"]:
            low, high = fig["ys"]
            assert high / low <= 1e12, f"{tab}: {fig['name']} spans {high / low:.1e}"
            checked.add(fig["name"])
    return checked


def test_every_tab_fits_three_window_sizes_and_its_plots_can_be_read(page, server_url):
    """On every tab and each of the Interpolant's sections, at 1600×1000, 1280×800 and 1024×768: no sideways
    scroll, a tab bar that fits, no widget over a plot, plots that stretch to the width; every figure reads its
    values under the pointer, every field has a colour bar, spectra span at most 12 decades (the shells the data
    do not hold are gaps)."""
    errors = _open(page, server_url)
    checked = set()
    page.set_viewport_size({"width": 1600, "height": 1000})
    for view in _views(page):
        plots = _check_layout(page, view, 1600, 1000)
        assert plots or view == "Jobs", f"{view} shows no plot"
        checked |= _check_figures(view, page.evaluate(FIGURES_JS))
        if view == f"Interpolant: {SECTIONS[0]}":  # the 2/3-dealiased Kolmogorov data hold shells 1..30 of 32
            data = _spectra(page, "spectra along the path")["data"]
            assert len(data) == 32 and all(y is None or y != y for y in data[30:])  # the rest are gaps
        for width, height in ((1280, 800), (1024, 768)):
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(400)
            _check_layout(page, view, width, height)
        page.set_viewport_size({"width": 1600, "height": 1000})
    assert {"radial power spectrum of the snapshot", "radial power spectrum", "spectra: A, B and the data",
            "spectra along the path"} <= checked
    assert errors == []


def test_a_link_reopens_the_same_tab_and_settings(page, server_url):
    query = "?tab=Compare&dataset=&noise=white&schedule=vp&a_steps=8&b_method=ode&lam=0.3"
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(server_url + query.replace("dataset=&", ""))
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0]"
                           ".get_model_by_name('spectra: A, B and the data') !== null", timeout=60000)
    assert page.locator(".bk-tab.bk-active").inner_text() == "Compare"
    assert "bk-active" in page.get_by_role("button", name="white", exact=True).get_attribute("class")
    kind = page.locator(".bk-input-group", has_text="Kind").locator("select").first
    assert kind.input_value() == "vp"
    steps = page.locator(".bk-input-group", has_text="Steps").locator("input")
    assert [steps.nth(0).input_value(), steps.nth(1).input_value()] == ["8", "16"]
    methods = page.locator(".bk-input-group", has_text="Method").locator("select")
    assert [methods.nth(0).input_value(), methods.nth(1).input_value()] == ["ode", "ode"]
    _tab(page, "Data")
    slider = page.locator(".bk-input-group", has_text="Diffusion scale λ").first
    slider.locator(".bk-slider-value", has_text="0.300").wait_for(timeout=20000)
    page.wait_for_function("() => window.location.search.includes('tab=Data')", timeout=10000)
    assert "noise=white" in page.evaluate("() => window.location.search")
    assert errors == []


def test_a_link_reopens_the_qg_jets_lower_layer_and_a_field_picked_in_rollout_moves_the_link(page, server_url):
    """``field`` in the URL: the Data view opens the two-layer QG set at the lower layer, the Rollout view shows
    the shipped QG emulator's lower layer too, and picking the upper layer there rewrites the link."""
    from engine.config import QGConfig
    from engine.data.catalog import SHIPPED_QG, cached_name

    qg = cached_name(QGConfig(**SHIPPED_QG))
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(server_url + f"?tab=Data&dataset={qg}&field=pv_lower")
    variable = page.locator(".bk-input-group", has_text="Variable").locator("select").first
    expect(variable).to_have_value("pv_lower", timeout=60000)
    _tab(page, "Rollout", "VRMSE vs lead time")
    page.locator(".bk-input-group", has_text="Emulator checkpoint").locator("select").first.select_option(
        "runs/shipped-qg-pointwise/checkpoint.pt")
    field = page.locator(".bk-input-group", has_text=re.compile("^Field")).locator("select").first
    expect(field).to_have_value("pv_lower", timeout=20000)
    field.select_option("pv_upper")
    page.wait_for_function("() => window.location.search.includes('field=pv_upper')", timeout=10000)
    assert errors == []


def test_the_sample_tab_opens_the_qg_jets_lower_layer_from_a_link_and_its_field_control_moves_the_link(page,
                                                                                                    server_url):
    """``field`` in the URL reaches the generation tabs: Sample draws the QG jet's lower layer with its exact drift,
    and choosing the upper layer in its *Field* redraws and rewrites the link."""
    from engine.config import QGConfig
    from engine.data.catalog import SHIPPED_QG, cached_name

    qg = cached_name(QGConfig(**SHIPPED_QG))
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(server_url + f"?tab=Sample&dataset={qg}&field=pv_lower")
    field = page.locator(".bk-input-group", has_text=re.compile("^Field")).locator("select").first
    expect(field).to_have_value("pv_lower", timeout=60000)
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('radial power spectrum')?.renderers"
                           ".some(r => r.name === 'generated' && r.data_source.data.y.length > 0)", timeout=60000)
    lower = _spectra(page, "radial power spectrum")["data"]
    field.select_option("pv_upper")
    page.wait_for_function("() => window.location.search.includes('field=pv_upper')", timeout=10000)
    page.wait_for_function("(lower) => Bokeh.documents[0].get_model_by_name('radial power spectrum').renderers"
                           ".find(r => r.name === 'data').data_source.data.y[0] !== lower", arg=lower[0],
                           timeout=30000)
    upper = _spectra(page, "radial power spectrum")["data"]
    held = [(u, v) for u, v in zip(upper, lower) if u == u and v == v]  # the plot leaves empty shells as NaN
    assert sum(u for u, _ in held) > 100 * sum(v for _, v in held)  # the upper layer: ≈ 23² times the variance
    assert errors == []


def test_a_link_reopens_the_same_interpolant_section_and_a_click_moves_the_link(page, server_url):
    page.goto(server_url + "?tab=Interpolant&section=Drift%20per%20noise")
    page.wait_for_function("(name) => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0]"
                           ".get_model_by_name(name) !== null", arg="exact drift norm ‖b(t, x_t)‖ per noise",
                           timeout=60000)
    active = [page.locator(".bk-tab.bk-active").nth(i).inner_text() for i in range(2)]
    assert active == ["Interpolant", "Drift per noise"]
    _settled_section(page, SECTIONS[2])
    page.wait_for_function("() => window.location.search.includes('section=High')", timeout=10000)
    page.locator(".bk-input-group", has_text="Dilation k").first.wait_for(timeout=20000)  # its own sidebar


def test_a_slow_recompute_shows_a_loading_overlay_that_clears(page, server_url):
    """Sampler A with 400 steps takes over a second per redraw: the plots are covered while it runs."""
    page.goto(server_url + "?tab=Sample&a_steps=400")
    page.wait_for_function("() => window.Bokeh?.documents[0]?.is_idle && Bokeh.documents[0]"
                           ".get_model_by_name('radial power spectrum')?.renderers"
                           ".some(r => r.name === 'generated' && r.data_source.data.y.length > 0)", timeout=60000)
    page.evaluate("""() => {  // record every loading state the plots go through, however brief
      window.__loading = [];
      for (const model of Bokeh.documents[0]._all_models.values())
        if ('css_classes' in model)
          model.properties.css_classes.change.connect(
            () => window.__loading.push(model.css_classes.includes('pn-loading')));
    }""")
    page.get_by_role("button", name="white", exact=True).click()
    page.wait_for_function("() => window.__loading.includes(true)", timeout=20000)
    page.wait_for_function(f"() => !({LOADING_JS})()", timeout=60000)
    page.wait_for_function("""() => {
      const y = Bokeh.documents[0].get_model_by_name('radial power spectrum').renderers
        .find(r => r.name === 'noise').data_source.data.y;
      return y[29] > 1e-3;  // white noise's power at k = 30: the redraw that the overlay covered has arrived
    }""", timeout=20000)


def test_a_reloaded_page_reattaches_to_a_running_training_job_and_can_cancel_it(page, server_url):
    _open(page, server_url)
    _tab(page, "Train", "training loss")
    for label, value in (("Batch size", "4"), ("Log every", "2"), ("Run name", "reload-run")):
        box = page.locator(".bk-input-group", has_text=label).locator("input").first
        box.fill(value)
        box.press("Enter")
    page.get_by_role("button", name="Start").click()
    points = ("() => Bokeh.documents[0].get_model_by_name('training loss').renderers"
              ".find(r => r.name === 'loss').data_source.data.x.length")
    page.wait_for_function(f"() => ({points})() >= 3", timeout=150000)
    page.reload()
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0", timeout=60000)
    _tab(page, "Train", "training loss")
    page.wait_for_function(f"() => ({points})() >= 3", timeout=60000)  # the kept events replay into the new page
    page.get_by_text(re.compile(r"Training job \d+: step \d+")).first.wait_for(timeout=30000)
    page.get_by_role("button", name="Cancel").click()
    page.get_by_text("cancelled: Resume continues").wait_for(timeout=30000)
    _tab(page, "Jobs")
    page.locator("table", has_text="runs/reload-run").get_by_text("cancelled").first.wait_for(timeout=20000)


NAME_LINKS_JS = r"""() => [...Bokeh.documents[0]._all_models.values()]
  .filter(m => typeof m.text === 'string').flatMap(m => m.text.split('href=').slice(1))
  .map(rest => rest.replace(/^(&quot;|["'])/, '').split(/&quot;|["']/)[0])
  .filter(url => /^https?:/.test(url)).map(url => url.replace(/^https?:\/+/, '').split('/')[0])
  .filter(host => /\.(nc|pt|zarr|gif|mp4)$/.test(host))"""


def test_no_file_or_run_name_is_shown_as_a_link(page, server_url):
    """The Data caption names the dataset file and the Train table every checkpoint's dataset: none of them becomes
    a link to a made-up site (``kolmogorov-64-….nc`` → http://kolmogorov-64-….nc)."""
    errors = _open(page, server_url)
    _tab(page, "Train")
    page.wait_for_function("() => [...Bokeh.documents[0]._all_models.values()]"
                           ".some(m => typeof m.text === 'string' && m.text.includes('Checkpoints')"
                           " && m.text.includes('.nc'))", timeout=30000)
    assert page.evaluate(NAME_LINKS_JS) == [] and errors == []



WELCOME_VISIBLE_JS = ("() => [...Bokeh.documents[0]._all_models.values()]"
                      ".filter(m => m.name === 'welcome-card').map(m => m.visible)")
ACTIVE_TAB_JS = """() => {
  const tabs = [...Bokeh.documents[0]._all_models.values()]
    .find(m => m.type === 'panel.models.tabs.Tabs' && m.tabs.some(t => t.title === 'Data'));
  return tabs.tabs[tabs.active].title;
}"""


def test_the_welcome_shows_once_and_each_lesson_opens_its_state(page, server_url):
    """A first visit shows the welcome; dismissed, a reload does not. Next ▶ steps through every lesson, each
    putting the dashboard in its state: its tab open, and its noise where it sets one (bounded by the lesson's
    own state arriving, the timeout only a failure bound)."""
    from app.lessons import LESSONS

    page.context.clear_cookies()
    errors = _open(page, server_url)
    assert page.evaluate(WELCOME_VISIBLE_JS) == [True]
    page.get_by_role("button", name="Got it").click()
    page.wait_for_function(f"() => ({WELCOME_VISIBLE_JS})()[0] === false", timeout=10000)
    page.reload()
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0", timeout=60000)
    page.wait_for_function(f"() => ({WELCOME_VISIBLE_JS})().length === 1", timeout=60000)
    assert page.evaluate(WELCOME_VISIBLE_JS) == [False]
    for number, lesson in enumerate(LESSONS, 1):
        page.get_by_role("button", name="Next ▶").click()
        page.wait_for_function(f"() => ({ACTIVE_TAB_JS})() === {lesson.studio['tab']!r} && [...Bokeh.documents[0]"
                               f"._all_models.values()].some(m => typeof m.text === 'string' && "
                               f"m.text.includes('Lesson {number} of {len(LESSONS)}'))", timeout=30000)
        if lesson.noise:  # the sidebar's noise control follows (its class once the model's value arrives)
            button = page.get_by_role("button", name=lesson.noise["kind"], exact=True)
            expect(button).to_have_class(re.compile("bk-active"), timeout=20000)
    expect(page.get_by_role("button", name="Next ▶")).to_be_disabled(timeout=20000)
    assert errors == []
