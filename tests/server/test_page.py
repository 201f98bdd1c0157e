"""The page in a real headless Chromium (Debian's /usr/bin/chromium) against the real server.

Each test uploads or picks a model the way a person would, waits for the job,
then reads what the page shows: the Plotly div's data and layout, the table
rows, the download links. Every test also fails on any JavaScript error or
failed request logged by the page. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_helpers import REPO, ServiceProcess

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
LEGACY_FIXTURES = REPO / "tests" / "fixtures" / "legacy"
JOB_TIMEOUT_MS = 240_000

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (test extra) is not installed")
if not Path(CHROMIUM).is_file():
    pytest.skip(
        "Debian's chromium is not installed (scripts/test installs it as root)", allow_module_level=True
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


class PageErrors:
    """JavaScript errors, console errors and failed requests seen by a page."""

    def __init__(self, page: sync_api.Page) -> None:
        self.messages: list[str] = []
        self.allowed: list[str] = []
        page.on("pageerror", lambda error: self.messages.append(f"pageerror: {error}"))
        page.on("console", lambda msg: msg.type == "error" and self.messages.append(f"console: {msg.text}"))
        page.on(
            "requestfailed",
            lambda request: self.messages.append(f"request failed: {request.url} {request.failure}"),
        )

    def allow(self, fragment: str) -> None:
        """Expected console noise, e.g. the 422 of a deliberately broken upload."""
        self.allowed.append(fragment)

    def unexpected(self) -> list[str]:
        return [m for m in self.messages if not any(a in m for a in self.allowed)]


def close_and_check(context: sync_api.BrowserContext, errors: PageErrors) -> None:
    """Close a browser context, then fail on anything its page logged while open.

    The log is read before closing: closing aborts whatever is still in flight,
    which says nothing about the page.
    """
    logged = errors.unexpected()
    context.close()
    assert logged == [], f"the page logged errors: {logged}"


@pytest.fixture()
def page(browser, service, request) -> Iterator[sync_api.Page]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, accept_downloads=True, base_url=service.url
    )
    page = context.new_page()
    errors = PageErrors(page)
    page.errors = errors  # type: ignore[attr-defined]
    yield page
    close_and_check(context, errors)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def wait_for_result(page) -> dict:
    """Wait until the job is done and the chart is drawn; return the chart's data/layout."""
    page.wait_for_selector('#job-status[data-status="succeeded"]', timeout=JOB_TIMEOUT_MS)
    page.wait_for_function(
        "() => { const c = document.getElementById('chart');"
        " return c && c.data && c.data.length > 0 && c.layout; }",
        timeout=60_000,
    )
    return page.evaluate("""() => {
        const c = document.getElementById('chart');
        return {names: c.data.map(t => t.name), yaxis: c.layout.yaxis.type,
                lines: c.data.map(t => ({name: t.name, n: (t.y || []).length}))};
    }""")


def job_id_of(page) -> str:
    hash_ = page.evaluate("location.hash")
    assert hash_.startswith("#job=")
    return hash_[len("#job=") :]


def legacy_config(name: str, tmp_path: Path) -> Path:
    """A genuine tf.keras 2 ``to_json()`` config from the legacy fixtures."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(json.loads((LEGACY_FIXTURES / f"{name}.json").read_text())["config"]))
    return path


def small_cnn_config(tmp_path: Path) -> Path:
    import keras

    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(4, name="head")(x)
    path = tmp_path / "small_cnn.json"
    path.write_text(keras.Model(inputs, outputs, name="small_cnn").to_json())
    return path


def test_the_page_scripts_are_es_modules_served_as_javascript(service):
    """Browsers refuse a module script served with a non-JavaScript MIME type."""
    index = httpx.get(f"{service.url}/", timeout=30).text
    assert '<script src="js/main.js" type="module"></script>' in index
    modules = sorted((REPO / "frontend" / "js").glob("*.js"))
    assert len(modules) > 1
    for module in modules:
        answer = httpx.get(f"{service.url}/js/{module.name}", timeout=30)
        assert answer.status_code == 200, module.name
        assert answer.headers["content-type"].split(";")[0] in (
            "text/javascript",
            "application/javascript",
        ), (module.name, answer.headers["content-type"])


def test_upload_draws_log_chart_table_and_downloads(page, service, tmp_path):
    page.goto("/")
    page.check('input[name="baselines"][value="he_normal"]')
    page.set_input_files("#file-input", str(small_cnn_config(tmp_path)))
    chart = wait_for_result(page)

    assert {
        "default (measured)",
        "AutoInit (measured)",
        "AutoInit (predicted)",
        "he_normal (measured)",
        "target variance",
    } <= set(chart["names"])
    assert chart["yaxis"] == "log"
    assert page.is_hidden("#block-view-box")  # no blocks: no residual-stream view
    job_id = job_id_of(page)
    traces = httpx.get(f"{service.url}/jobs/{job_id}/traces", timeout=30).json()
    measured = next(line for line in chart["lines"] if line["name"] == "AutoInit (measured)")
    assert measured["n"] == len(traces["layers"])

    # The table: one row per layer, weighted rows marked, filter and sort work.
    rows = page.locator("#layer-table tbody tr")
    assert rows.count() == len(traces["layers"])
    assert page.locator("#layer-table tbody tr.weighted").count() == 3
    # measured / predicted E[y^2]: AutoInit's weighted layers are where it said (no red cells).
    ratios = page.locator("#layer-table tbody tr.weighted td.ratio")
    assert ratios.count() == 3 and page.locator("#layer-table tbody tr.weighted td.off").count() == 0
    assert all(0.5 <= float(ratios.nth(i).text_content()) <= 2 for i in range(3))
    assert rows.first.get_attribute("data-name") == traces["layers"][0]["name"]
    page.fill("#table-filter", "conv_")
    assert [rows.nth(i).get_attribute("data-name") for i in range(rows.count())] == ["conv_a", "conv_b"]
    page.fill("#table-filter", "")
    page.get_by_role("button", name="var AutoInit (measured)").click()
    page.get_by_role("button", name="var AutoInit (measured)").click()  # descending
    header = page.locator("th", has=page.get_by_role("button", name="var AutoInit (measured)"))
    assert header.get_attribute("aria-sort") == "descending"
    by_var = sorted(
        (layer for layer in traces["layers"] if layer["autoinit"]["var"] is not None),
        key=lambda layer: -layer["autoinit"]["var"],
    )
    assert rows.first.get_attribute("data-name") == by_var[0]["name"]

    # Downloads are real links that serve the files.
    links = page.locator("#downloads a")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert hrefs == [
        f"jobs/{job_id}/model",
        f"jobs/{job_id}/config",
        f"jobs/{job_id}/traces",
        f"jobs/{job_id}/traces.csv",
    ]
    with page.expect_download() as download:
        links.nth(0).click()
    saved = tmp_path / "model.keras"
    download.value.save_as(saved)
    assert saved.read_bytes()[:2] == b"PK"  # a .keras zip archive
    csv = page.request.get(hrefs[3])
    assert csv.ok and csv.text().splitlines()[0].startswith("index,name,class_name")
    config = page.request.get(hrefs[1]).json()
    assert config["config"]["name"] == "small_cnn"

    # Linear scale on demand.
    page.uncheck("#log-toggle")
    page.wait_for_function("document.getElementById('chart').layout.yaxis.type === 'linear'")
    screenshot(page, "page-small-cnn-linear")
    page.check("#log-toggle")
    page.wait_for_function("document.getElementById('chart').layout.yaxis.type === 'log'")
    screenshot(page, "page-small-cnn")


def test_an_example_is_one_click_and_keyboard_reachable(page):
    page.goto("/")
    button = page.locator('#examples button[data-example="codeepneat"]')
    button.wait_for()
    assert page.locator("#examples button").count() >= 10
    button.focus()
    page.keyboard.press("Enter")
    chart = wait_for_result(page)
    assert "AutoInit (measured)" in chart["names"]
    assert "codeepneat" in page.text_content("#job-title")
    # Weighted layers are highlighted with red-outlined markers in the chart.
    assert "weighted layer (has weights)" in chart["names"]
    screenshot(page, "page-example-codeepneat")


def test_a_broken_file_and_a_lambda_model_show_the_servers_error(page, tmp_path):
    page.errors.allow("422")  # the browser logs the refused upload's status
    page.goto("/")
    broken = tmp_path / "broken.json"
    broken.write_text('{"class_name": "Functional", "config": ')
    page.set_input_files("#file-input", str(broken))
    error = page.locator("#job-error")
    error.wait_for(state="visible")
    assert "not valid JSON" in error.text_content() or "Invalid model config" in error.text_content()
    assert page.get_attribute("#job-status", "data-status") == "failed"
    assert page.is_hidden("#results")

    page.set_input_files("#file-input", str(legacy_config("lambda", tmp_path)))
    page.wait_for_function("document.getElementById('job-error').textContent.includes('Lambda')")
    assert "code" in error.text_content().lower()
    screenshot(page, "page-error")


def test_a_dropped_legacy_config_is_converted_and_the_permalink_reopens_it(page, service, tmp_path):
    page.goto("/")
    text = legacy_config("gated", tmp_path).read_text()
    transfer = page.evaluate_handle(
        """(text) => { const dt = new DataTransfer();
            dt.items.add(new File([text], 'gated.json', {type: 'application/json'}));
            return dt; }""",
        text,
    )
    page.dispatch_event("main", "dragenter", {"dataTransfer": transfer})
    assert page.is_visible("#drop-overlay")
    page.dispatch_event("main", "drop", {"dataTransfer": transfer})
    wait_for_result(page)
    assert page.is_hidden("#drop-overlay")
    assert "converted from tf.keras 2" in page.text_content("#job-title")
    job_id = job_id_of(page)
    permalink = page.get_attribute("#permalink", "href")
    assert permalink == f"/#job={job_id}"

    # A fresh visit to the permalink, and to /jobs/<id>/view, shows the same job.
    for address in (permalink, f"/jobs/{job_id}/view"):
        # Let the blank page finish loading: leaving it mid-fetch aborts its requests.
        page.goto("/", wait_until="networkidle")
        page.goto(address)
        chart = wait_for_result(page)
        assert job_id_of(page) == job_id and "AutoInit (measured)" in chart["names"]
    rows = page.locator("#layer-table tbody tr").count()
    traces = httpx.get(f"{service.url}/jobs/{job_id}/traces", timeout=30).json()
    assert rows == len(traces["layers"])


def test_pasted_json_with_options_and_dark_mode(browser, service, tmp_path):
    import keras

    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, color_scheme="dark", base_url=service.url
    )
    page = context.new_page()
    errors = PageErrors(page)
    try:
        page.goto("/")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        red, green, blue = (int(v) for v in background[background.index("(") + 1 : -1].split(",")[:3])
        assert red + green + blue < 150, background

        model = keras.Sequential(
            [
                keras.Input((12,)),
                keras.layers.Dense(16, activation="selu"),
                keras.layers.Dense(16, activation="selu"),
            ],
            name="pasted_mlp",
        )
        page.click("#paste-box summary")
        page.fill("#paste-input", model.to_json())
        page.fill('input[name="signal_variance"]', "4")
        page.fill('input[name="seed"]', "7")
        page.check('input[name="backward"]')
        page.click("#paste-submit")
        wait_for_result(page)
        job_id = job_id_of(page)
        job = httpx.get(f"{service.url}/jobs/{job_id}", timeout=30).json()
        assert job["options"]["signal_variance"] == 4.0 and job["options"]["seed"] == 7
        assert job["options"]["backward"] is True
        layout = page.evaluate("document.getElementById('chart').layout")
        assert layout["template"]["layout"]["paper_bgcolor"] != "white"
        assert layout["yaxis2"]["type"] == "log"  # the gradient panel
        assert "gradient" in layout["yaxis2"]["title"]["text"]
        target = page.evaluate("""document.getElementById('chart').data
            .filter(t => t.name === 'target variance').map(t => t.y[0])""")
        assert target == [4.0]
        screenshot(page, "page-dark")
    finally:
        close_and_check(context, errors)


def test_a_keras_archive_upload_is_initialized(page, tmp_path):
    import keras

    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Dense(12, activation="gelu", name="hidden"),
            keras.layers.Dense(3, name="out"),
        ],
        name="archived",
    )
    path = tmp_path / "archived.keras"
    model.save(path)
    page.goto("/")
    page.set_input_files("#file-input", str(path))
    chart = wait_for_result(page)
    assert "AutoInit (predicted)" in chart["names"]
    assert "archived" in page.text_content("#job-title")
    names = page.locator("#layer-table tbody tr.weighted")
    assert sorted(names.nth(i).get_attribute("data-name") for i in range(names.count())) == ["hidden", "out"]


def test_autoinit_plus_plus_centres_the_activations(page, service, tmp_path):
    import keras

    model = keras.Sequential(
        [
            keras.Input((32,)),
            keras.layers.Dense(64, activation="relu", name="h1"),
            keras.layers.Dense(64, activation="relu", name="h2"),
            keras.layers.Dense(4, name="out"),
        ],
        name="relu_mlp",
    )
    path = tmp_path / "relu_mlp.json"
    path.write_text(model.to_json())
    page.goto("/")
    page.check('input[name="center_activations"]')
    page.set_input_files("#file-input", str(path))
    wait_for_result(page)
    job_id = job_id_of(page)
    traces = httpx.get(f"{service.url}/jobs/{job_id}/traces", timeout=30).json()
    assert traces["center_activations"] is True
    # The centring layers AutoInit++ inserted are listed in the page's table.
    rows = page.locator("#layer-table tbody tr")
    names = [rows.nth(i).get_attribute("data-name") for i in range(rows.count())]
    assert names == [layer["name"] for layer in traces["layers"]]
    centred = [layer for layer in traces["layers"] if layer["class_name"] == "Rescaling"]
    assert len(centred) == 2
    assert all(abs(layer["autoinit"]["mean"]) < 0.1 for layer in centred)


@pytest.fixture(scope="module")
def keyed_api(tmp_path_factory):
    """An API that needs a key, with no worker: jobs stay queued."""
    api = ServiceProcess(
        tmp_path_factory.mktemp("page-keys") / "data",
        "--workers",
        "0",
        env={"AUTOINIT_API_KEYS": "s3cret;key=1"},
    )
    api.wait_healthy()
    yield api
    api.stop()


def test_the_page_asks_for_an_api_key_when_the_server_needs_one(browser, keyed_api, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=keyed_api.url)
    page = context.new_page()
    errors = PageErrors(page)
    errors.allow("401")  # the browser logs the first, refused upload
    try:
        page.goto("/")
        path = small_cnn_config(tmp_path)
        page.set_input_files("#file-input", str(path))
        page.locator("#key-form").wait_for(state="visible")
        assert "API key required" in page.text_content("#job-error")

        page.fill("#key-input", "s3cret;key=1")
        page.click("#key-form button")
        assert page.is_hidden("#key-form")
        page.set_input_files("#file-input", str(path))
        page.wait_for_selector('#job-status[data-status="queued"]')
        job_id = job_id_of(page)
        # Plain GETs (download links, permalinks) carry the key too, via the cookie.
        assert page.request.get(f"/jobs/{job_id}").json()["status"] == "queued"
        assert httpx.get(f"{keyed_api.url}/jobs/{job_id}", timeout=10).status_code == 401
    finally:
        close_and_check(context, errors)


def test_a_layer_without_an_estimator_is_flagged_in_the_chart_table_and_warnings(page, tmp_path):
    import keras

    inputs = keras.Input((6, 8), name="steps")
    # A generic RNN over a cell: no estimator (the GRU/LSTM/SimpleRNN layers have one).
    x = keras.layers.RNN(keras.layers.SimpleRNNCell(8), return_sequences=True, name="per_step")(inputs)
    outputs = keras.layers.Dense(4, name="head")(keras.layers.Flatten(name="flat")(x))
    path = tmp_path / "wrapped.json"
    path.write_text(keras.Model(inputs, outputs, name="wrapped").to_json())
    page.goto("/")
    page.set_input_files("#file-input", str(path))
    chart = wait_for_result(page)
    assert "pass-through (no estimator)" in chart["names"]
    flagged = page.locator("#layer-table tbody tr.pass-through")
    assert [flagged.nth(i).get_attribute("data-name") for i in range(flagged.count())] == ["per_step"]
    assert flagged.first.locator("td.estimator").text_content() == "pass-through"
    warnings = page.locator("#job-warnings li")
    assert any("per_step" in warnings.nth(i).text_content() for i in range(warnings.count()))


def test_fused_layers_are_read_before_their_activation_against_the_target(page, service, tmp_path):
    """A Dense with a fused ReLU outputs ~0.34 under AutoInit (ReLU of a unit
    Gaussian); what AutoInit scales to the target is its pre-activation."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((32,)),
            keras.layers.Dense(64, activation="relu", name="h1"),
            keras.layers.Dense(64, activation="relu", name="h2"),
            keras.layers.Dense(4, name="out"),
        ],
        name="fused_mlp",
    )
    path = tmp_path / "fused_mlp.json"
    path.write_text(model.to_json())
    page.goto("/")
    page.set_input_files("#file-input", str(path))
    wait_for_result(page)
    traces = httpx.get(f"{service.url}/jobs/{job_id_of(page)}/traces", timeout=30).json()
    fused = [layer["index"] for layer in traces["layers"] if "pre_activation" in layer]
    assert [traces["layers"][i]["name"] for i in fused] == ["h1", "h2"]

    read_autoinit = """() => { const c = document.getElementById('chart');
        const t = c.data.find(t => t.meta && t.meta.series === 'autoinit' && t.meta.metric === 'var'
                                   && t.visible !== false);
        return {view: t.meta.view || 'output', y: t.y, symbols: t.marker.symbol,
                title: c.layout.yaxis.title.text}; }"""
    # The output view first: the fused layers sit well below the target line at 1.
    assert page.is_visible("#view-toggle")
    output = page.evaluate(read_autoinit)
    assert output["view"] == "output" and all(output["y"][i] < 0.5 for i in fused)

    page.check("#pre-activation-toggle")
    page.wait_for_function("""() => document.getElementById('chart').data.some(
        t => t.meta && t.meta.view === 'pre_activation' && t.visible === true)""")
    before = page.evaluate(read_autoinit)
    assert before["view"] == "pre_activation"
    assert all(0.5 <= before["y"][i] <= 2 for i in fused), before["y"]
    assert [before["symbols"][i] for i in fused] == ["diamond", "diamond"]
    assert "before fused activations" in before["title"]
    # The figure's own view menu is driven by the toolbar, not drawn twice.
    assert not any(
        menu.get("name") == "view"
        for menu in page.evaluate("document.getElementById('chart').layout.updatemenus || []")
    )

    # The table: before activation / target for the fused layers only, none flagged.
    cells = {
        name: page.locator(f'#layer-table tbody tr[data-name="{name}"] td.pre_ratio').text_content()
        for name in ("h1", "h2", "out")
    }
    assert all(0.5 <= float(cells[name]) <= 2 for name in ("h1", "h2")), cells
    assert cells["out"] == "—"
    assert page.locator("#layer-table tbody tr td.pre_ratio.off").count() == 0
    screenshot(page, "page-pre-activation")


def _form_state(page) -> dict:
    return page.evaluate("""() => {
        const form = document.getElementById('options-form');
        const value = (name) => form.elements[name].value;
        return {
            numbers: Object.fromEntries(['input_mean', 'input_var', 'signal_variance', 'seed', 'probe_batch']
                .map(n => [n, Number(value(n))])),
            probe_batch_max: Number(form.elements.probe_batch.max),
            distribution: value('distribution'),
            distributions: [...form.elements.distribution.options].map(o => o.value),
            baselines: [...form.querySelectorAll('input[name=baselines]')].map(b => [b.value, b.checked]),
            backward: form.elements.backward.checked,
            center_activations: form.elements.center_activations.checked,
        };
    }""")


def test_the_options_form_takes_its_defaults_and_choices_from_the_api(page, service, tmp_path):
    info = httpx.get(f"{service.url}/options", timeout=30).json()
    defaults, properties = info["defaults"], info["schema"]["properties"]
    page.goto("/")
    page.wait_for_function("document.querySelectorAll('input[name=baselines]').length > 0")
    form = _form_state(page)
    assert form["numbers"] == {name: defaults[name] for name in form["numbers"]}
    assert form["probe_batch_max"] == properties["probe_batch"]["maximum"]
    assert form["distribution"] == defaults["distribution"]
    assert form["distributions"] == properties["distribution"]["enum"]
    assert form["baselines"] == [
        [name, name in defaults["baselines"]] for name in properties["baselines"]["items"]["enum"]
    ]
    assert (form["backward"], form["center_activations"]) == (
        defaults["backward"],
        defaults["center_activations"],
    )

    # Other defaults from the server are what the page shows and sends: the
    # real /options answer, its defaults changed on the way to the page.
    changed = {
        **defaults,
        "seed": 42,
        "probe_batch": 64,
        "distribution": properties["distribution"]["enum"][-1],
        "baselines": properties["baselines"]["items"]["enum"][:2],
    }

    def changed_defaults(route):
        answer = route.fetch()
        route.fulfill(response=answer, json={**answer.json(), "defaults": changed})

    page.route(re.compile(r".*/options$"), changed_defaults)
    page.goto("/", wait_until="networkidle")
    page.wait_for_function("document.querySelectorAll('input[name=baselines]').length > 0")
    form = _form_state(page)
    assert form["numbers"]["seed"] == 42 and form["numbers"]["probe_batch"] == 64
    assert form["distribution"] == changed["distribution"]
    assert [name for name, checked in form["baselines"] if checked] == changed["baselines"]
    page.set_input_files("#file-input", str(small_cnn_config(tmp_path)))
    wait_for_result(page)
    job = httpx.get(f"{service.url}/jobs/{job_id_of(page)}", timeout=30).json()
    assert job["options"]["seed"] == 42 and job["options"]["probe_batch"] == 64
    assert job["options"]["distribution"] == changed["distribution"]
    assert job["options"]["baselines"] == changed["baselines"]


def _training_charts(page) -> dict:
    """Per training chart: its lines, divergence marks, dotted lines and annotations."""
    return page.evaluate("""() => Object.fromEntries(['training-loss', 'training-grad'].map(id => {
        const c = document.getElementById(id);
        return [id, {
            lines: c.data.filter(t => t.mode === 'lines').map(t => [t.name, t.y, t.line.color]),
            marks: c.data.filter(t => t.meta && 'diverged_at' in t.meta)
                .map(t => [t.meta.series, t.x[0], t.y[0], t.marker.symbol]),
            dotted: (c.layout.shapes || []).map(s => [s.x0, s.line.dash]),
            notes: (c.layout.annotations || []).map(a => a.text),
            yaxis: c.layout.yaxis.type,
        }];
    }))""")


def _python_lines(training: dict, panel: str) -> list:
    """The same lines as autoinit.plot.training_figure draws them (the spec the page mirrors)."""
    from autoinit.plot import training_figure

    figure = training_figure(training)
    return [
        [t.name, list(t.y), t.line.color]
        for t in figure.data
        if t.meta and t.meta.get("panel") == panel and t.mode == "lines"
    ]


def _python_marks(training: dict, panel: str) -> list:
    """autoinit.plot.training_figure's divergence marks: [series, step, height, symbol]."""
    from autoinit.plot import training_figure

    figure = training_figure(training)
    return [
        [t.meta["series"], t.x[0], t.y[0], t.marker.symbol]
        for t in figure.data
        if t.meta and t.meta.get("panel") == panel and "diverged_at" in t.meta
    ]


def _next_job(page, previous: str | None) -> str:
    """The id of the job the page opened after ``previous``, once it succeeded."""
    page.wait_for_function(f"location.hash.startsWith('#job=') && location.hash !== '#job={previous}'")
    job_id = job_id_of(page)
    page.wait_for_selector('#job-status[data-status="succeeded"]', timeout=JOB_TIMEOUT_MS)
    return job_id


def _run_with_training(page, service, previous: str | None, steps: int) -> tuple[str, dict]:
    """Wait for the page's next job and its training charts: (its id, its traces' training)."""
    job_id = _next_job(page, previous)
    page.wait_for_selector(f'#training-card[data-job="{job_id}"]', timeout=60_000)
    job = httpx.get(f"{service.url}/jobs/{job_id}", timeout=30).json()
    assert job["options"]["train_steps"] == steps
    traces = httpx.get(f"{service.url}/jobs/{job_id}/traces", timeout=30).json()
    return job_id, traces["training"]


def test_training_steps_draw_loss_and_gradient_norm_charts_per_initialization(page, service, tmp_path):
    import keras

    from autoinit.plot import SYNTHETIC_TASK_NOTE

    info = httpx.get(f"{service.url}/options", timeout=30).json()
    page.goto("/")
    page.wait_for_function("document.querySelectorAll('input[name=baselines]').length > 0")
    steps_input = page.locator('input[name="train_steps"]')
    assert steps_input.is_visible() and steps_input.input_value() == str(info["defaults"]["train_steps"])
    assert steps_input.get_attribute("max") == str(info["schema"]["properties"]["train_steps"]["maximum"])
    assert "synthetic" in page.text_content("#train-steps-hint")
    assert page.is_hidden("#training-card")

    # The mlp example, AutoInit next to the default and He normal, 6 steps each.
    steps_input.fill("6")
    page.check('input[name="baselines"][value="he_normal"]')
    page.locator('#examples button[data-example="mlp"]').click()
    job_id, training = _run_with_training(page, service, None, 6)
    assert list(training["series"]) == ["default", "he_normal", "autoinit"]
    charts = _training_charts(page)
    for chart_id, panel in (("training-loss", "loss"), ("training-grad", "grad_norm")):
        chart = charts[chart_id]
        assert chart["yaxis"] == "log"
        assert [name for name, _, _ in chart["lines"]] == ["default (model's own)", "he_normal", "AutoInit"]
        assert all(len(y) == 6 for _, y, _ in chart["lines"])
        assert chart["lines"] == _python_lines(training, panel)  # values, names and colours
    note = page.locator("#training-note")
    assert note.is_visible() and note.text_content() == SYNTHETIC_TASK_NOTE
    assert (
        page.text_content("#training-summary") == "6 steps of SGD, learning rate 0.01, momentum 0.9, batch 64"
    )
    # Below the propagation chart.
    chart_box, loss_box = page.locator("#chart").bounding_box(), page.locator("#training-loss").bounding_box()
    assert loss_box["y"] > chart_box["y"] + chart_box["height"]
    screenshot(page, "page-training-mlp")

    # A model whose default explodes: the page marks where it diverged.
    init = keras.initializers.RandomNormal(stddev=8.0)
    exploding = keras.Sequential(
        [keras.Input((16,))]
        + [keras.layers.Dense(32, kernel_initializer=init, name=f"d{i}") for i in range(12)]
        + [keras.layers.Dense(4, kernel_initializer=init, name="out")],
        name="exploding",
    )
    path = tmp_path / "exploding.json"
    path.write_text(exploding.to_json())
    page.uncheck('input[name="baselines"][value="he_normal"]')
    page.set_input_files("#file-input", str(path))
    job_id, training = _run_with_training(page, service, job_id, 6)
    assert training["series"]["default"]["diverged_at"] == 0
    assert training["series"]["autoinit"]["diverged_at"] is None
    charts = _training_charts(page)
    for chart_id, panel in (("training-loss", "loss"), ("training-grad", "grad_norm")):
        chart = charts[chart_id]
        assert chart["lines"] == _python_lines(training, panel)
        assert [[series, step, symbol] for series, step, _, symbol in chart["marks"]] == [["default", 0, "x"]]
        assert chart["marks"] == _python_marks(training, panel)  # at the same height
        assert chart["dotted"] == [[0, "dot"]]
    assert charts["training-loss"]["notes"] == ["default (model's own): diverged at step 0"]
    screenshot(page, "page-training-diverged")

    # A job that does not train shows no training charts.
    steps_input.fill("0")
    page.locator('#examples button[data-example="mlp"]').click()
    job_id = _next_job(page, job_id)
    assert "training" not in httpx.get(f"{service.url}/jobs/{job_id}/traces", timeout=30).json()
    page.wait_for_function("document.getElementById('training-card').hidden")
    assert page.get_attribute("#training-card", "data-job") is None


def _download_hrefs(page) -> list[str]:
    links = page.locator("#downloads a")
    return [links.nth(i).get_attribute("href") for i in range(links.count())]


def test_a_training_job_offers_its_training_csv_next_to_the_other_downloads(page, service):
    page.goto("/")
    page.wait_for_function("document.querySelectorAll('input[name=baselines]').length > 0")
    page.locator('input[name="train_steps"]').fill("3")
    page.locator('#examples button[data-example="mlp"]').click()
    job_id, training = _run_with_training(page, service, None, 3)
    hrefs = _download_hrefs(page)
    assert hrefs[:4] == [
        f"jobs/{job_id}/model",
        f"jobs/{job_id}/config",
        f"jobs/{job_id}/traces",
        f"jobs/{job_id}/traces.csv",
    ]
    assert hrefs[4:] == [f"jobs/{job_id}/traces.csv?table=training"]
    link = page.locator("#downloads a").nth(4)
    assert link.text_content() == "training (CSV)" and link.get_attribute("download") == ""
    table = page.request.get(hrefs[4])
    assert table.ok and table.text().splitlines()[0] == "step," + ",".join(
        f"{name}_{key}" for name in training["series"] for key in ("loss", "grad_norm")
    )
    assert len(table.text().splitlines()) == 1 + 3 + 1  # header, a row per step, diverged_at

    # The next job, which does not train, has no such link.
    page.locator('input[name="train_steps"]').fill("0")
    page.locator('#examples button[data-example="mlp"]').click()
    job_id = _next_job(page, job_id)
    page.wait_for_function(
        f"document.querySelector('#downloads a') && "
        f"document.querySelector('#downloads a').getAttribute('href') === 'jobs/{job_id}/model'"
    )
    assert _download_hrefs(page) == [
        f"jobs/{job_id}/model",
        f"jobs/{job_id}/config",
        f"jobs/{job_id}/traces",
        f"jobs/{job_id}/traces.csv",
    ]


def test_training_data_is_offered_with_training_and_sent_as_the_data_field(page, service, tmp_path):
    import numpy as np

    page.goto("/")
    page.wait_for_function("document.querySelectorAll('input[name=baselines]').length > 0")
    steps_input = page.locator('input[name="train_steps"]')
    steps_input.fill("0")
    assert page.is_hidden("#train-data")  # nothing to train: no data to give
    steps_input.fill("2")
    assert page.is_visible("#train-data") and page.is_visible("#train-data-input")
    assert "synthetic" in page.text_content("#train-steps-hint")

    # Arrays that fit the mlp example: x of its input shape, y of its (non-softmax) output's.
    import keras

    example = keras.models.model_from_json((REPO / "frontend" / "examples" / "mlp.json").read_text())
    rng = np.random.default_rng(0)
    data = tmp_path / "train.npz"
    np.savez(
        data,
        x=rng.standard_normal((96, *example.input_shape[1:])).astype("float32"),
        y=rng.standard_normal((96, *example.output_shape[1:])).astype("float32"),
    )
    page.set_input_files("#train-data-input", str(data))
    page.locator('#examples button[data-example="mlp"]').click()
    job_id, training = _run_with_training(page, service, None, 2)
    assert training["task"] == "data" and training["synthetic"] is False
    note = page.locator("#training-note")
    assert note.is_visible() and "synthetic" not in note.text_content()

    # With training off, the chosen file is not sent (the server would refuse data without training).
    steps_input.fill("0")
    assert page.is_hidden("#train-data")
    page.locator('#examples button[data-example="mlp"]').click()
    job_id = _next_job(page, job_id)
    assert page.is_hidden("#job-error")


def small_bert_config(tmp_path: Path) -> Path:
    """A smaller BERT of stock Keras layers: two post-norm encoder blocks, each a
    nested model named as keras_hub names BERT's, so the traces name the records
    inside a block ``transformer_layer_0/add`` as they do for keras_hub's backbones
    (whose configs the upload's allow-list does not take)."""
    import keras
    from keras import layers

    def block(name: str) -> keras.Model:
        x_in = keras.Input((16, 32), name=f"{name}_input")
        attended = layers.MultiHeadAttention(2, 16, name="self_attention_layer")(x_in, x_in)
        attended = layers.Dropout(0.1, name="self_attention_dropout")(attended)
        x = layers.Add(name="add")([x_in, attended])
        x = layers.LayerNormalization(name="self_attention_layer_norm")(x)
        h = layers.Dense(64, activation="gelu", name="feedforward_intermediate_dense")(x)
        h = layers.Dense(32, name="feedforward_output_dense")(h)
        y = layers.Add(name="add_1")([x, h])
        return keras.Model(x_in, layers.LayerNormalization(name="feedforward_layer_norm")(y), name=name)

    ids = keras.Input((16,), dtype="int32", name="token_ids")
    x = layers.Embedding(100, 32, name="token_embedding")(ids)
    x = layers.LayerNormalization(name="embeddings_layer_norm")(x)
    for i in range(2):
        x = block(f"transformer_layer_{i}")(x)
    outputs = layers.Dense(4, name="pooled_dense")(layers.GlobalAveragePooling1D(name="pool")(x))
    path = tmp_path / "small_bert.json"
    path.write_text(keras.Model(ids, outputs, name="small_bert").to_json())
    return path


_READ_VIEW = """() => { const c = document.getElementById('chart');
    const t = c.data.find(t => t.meta && t.meta.series === 'autoinit' && t.meta.metric === 'var');
    const axes = Object.keys(c.layout).filter(k => /^xaxis\\d*$/.test(k)).map(k => c.layout[k]);
    return {x: t.x, y: t.y, names: t.hovertext.map(h => h.split('</b>')[0].replace('<b>', '')),
            ticktext: c.layout.xaxis.ticktext || null, tickvals: c.layout.xaxis.tickvals || null,
            titles: axes.map(a => a.title && a.title.text).filter(Boolean),
            bands: (c.layout.shapes || []).filter(s => s.type === 'rect').map(s => s.name),
            blocks: (c.layout.annotations || []).filter(a => a.name === 'block').map(a => a.text)}; }"""


def _show(page, view: str, first_label: str | None) -> dict:
    """Pick a view in the "Show" select; wait for the chart to redraw with it."""
    page.select_option("#block-view", view)
    page.wait_for_function(
        "(first) => { const t = document.getElementById('chart').layout.xaxis.ticktext;"
        " return first === null ? !t : !!t && t[0] === first; }",
        arg=first_label,
    )
    return page.evaluate(_READ_VIEW)


def _table_names(page) -> list[str]:
    rows = page.locator("#layer-table tbody tr")
    return [rows.nth(i).get_attribute("data-name") for i in range(rows.count())]


def test_a_transformer_shows_its_residual_stream_and_one_blocks_inside(page, service, tmp_path):
    from autoinit.plot import signal_figure

    page.goto("/")
    page.set_input_files("#file-input", str(small_bert_config(tmp_path)))
    wait_for_result(page)
    traces = httpx.get(f"{service.url}/jobs/{job_id_of(page)}/traces", timeout=30).json()
    names = [layer["name"] for layer in traces["layers"]]
    assert page.is_visible("#block-view-box") and page.input_value("#block-view") == "all"
    assert page.eval_on_selector_all("#block-view option", "os => os.map(o => [o.value, o.textContent])") == [
        ["all", "all layers"],
        ["stream", "residual stream"],
        ["block:transformer_layer_0", "block transformer_layer_0"],
        ["block:transformer_layer_1", "block transformer_layer_1"],
    ]
    everything = page.evaluate(_READ_VIEW)  # the default view: every record, by index
    # ... but the token ids: indices up to the vocabulary, not a signal (in the table, not the chart).
    assert traces["layers"][0]["signal"] is False and traces["layers"][0]["predicted"]["var"] is None
    assert everything["x"] == list(range(1, len(names))) and everything["ticktext"] is None
    assert everything["names"] == names[1:]
    assert _table_names(page) == names

    # The residual stream: top level, and per block its adds and the norms after them.
    stream = [
        "token_ids",
        "token_embedding",
        "embeddings_layer_norm",
        *(
            f"transformer_layer_{i}/{leaf}"
            for i in range(2)
            for leaf in ("add", "self_attention_layer_norm", "add_1", "feedforward_layer_norm")
        ),
        "pool",
        "pooled_dense",
    ]
    charted = stream[1:]  # not the token ids
    shown = _show(page, "stream", "token_embedding")
    labels = [name.split("/", 1)[-1] for name in charted]
    assert shown["ticktext"] == labels
    assert shown["x"] == shown["tickvals"] == list(range(len(charted)))  # evenly spaced
    assert shown["names"] == charted
    by_name = {layer["name"]: layer for layer in traces["layers"]}
    assert shown["y"] == pytest.approx([by_name[name]["autoinit"]["var"] for name in charted])
    assert shown["bands"] == ["transformer_layer_0", "transformer_layer_1"] and shown["blocks"] == ["0", "1"]
    assert (
        "residual stream, in topological order (blocks transformer_layer_0 … transformer_layer_1)"
        in (shown["titles"])
    )
    assert _table_names(page) == stream
    assert page.text_content("#table-count") == f"{len(stream)} of {len(names)} layers"
    # The page narrows the server's figure as autoinit.plot draws the same view.
    python = signal_figure(traces, view="stream")
    assert list(python.layout.xaxis.ticktext) == labels and list(python.layout.xaxis.tickvals) == shown["x"]
    assert [a.text for a in python.layout.annotations if a.name == "block"] == shown["blocks"]
    python_autoinit = next(t for t in python.data if t.meta == {"series": "autoinit", "metric": "var"})
    assert shown["y"] == pytest.approx(list(python_autoinit.y))
    screenshot(page, "page-residual-stream")

    # One block's inside, in order.
    inside = [name for name in names if name.startswith("transformer_layer_1/")]
    assert len(inside) == 8
    shown = _show(page, "block:transformer_layer_1", "self_attention_layer")
    assert shown["ticktext"] == [name.split("/", 1)[1] for name in inside]
    assert shown["names"] == inside and shown["x"] == list(range(len(inside)))
    assert shown["bands"] == shown["blocks"] == ["transformer_layer_1"]
    assert _table_names(page) == inside

    # And back to every record.
    shown = _show(page, "all", None)
    assert shown["x"] == list(range(1, len(names))) and shown["bands"] == []
    assert shown["names"] == names[1:]
    assert _table_names(page) == names


def test_the_bert_tiny_example_shows_its_residual_stream_block_by_block(page, service):
    """keras_hub's BERT, from the gallery: the stream's labels are its block-level records in order."""
    pytest.importorskip("keras_hub", reason="keras-hub is not installed (the worker builds the example)")
    from autoinit import zoo
    from autoinit.plot.blocks import STREAM, block_names, label_of, view_layers

    page.goto("/")
    page.locator('#examples button[data-example="bert_tiny"]').wait_for()
    hub = page.locator("#examples button.hub")
    assert [hub.nth(i).get_attribute("data-example") for i in range(hub.count())] == list(zoo.HUB_ZOO)
    page.locator('#examples button[data-example="bert_tiny"]').click()
    wait_for_result(page)
    assert "bert_tiny" in page.text_content("#job-title")
    traces = httpx.get(f"{service.url}/jobs/{job_id_of(page)}/traces", timeout=30).json()
    stream = [layer["name"] for layer in view_layers(traces["layers"], STREAM)]
    blocks = block_names(traces["layers"])
    assert [name for name in stream if "/" in name] == [
        f"transformer_layer_{i}/{leaf}"
        for i in range(4)
        for leaf in ("add", "self_attention_layer_norm", "add_1", "feedforward_layer_norm")
    ]
    assert stream[-1] == "pooled_dense"

    # Token ids, segment ids and the padding mask are indices: in the table, not in the chart.
    inputs = [layer["name"] for layer in traces["layers"] if layer.get("signal") is False]
    assert sorted(inputs) == ["padding_mask", "segment_ids", "token_ids"]
    charted = [name for name in stream if name not in inputs]
    shown = _show(page, "stream", label_of(charted[0], blocks))
    assert shown["ticktext"] == [label_of(name, blocks) for name in charted]
    assert shown["names"] == charted and shown["x"] == list(range(len(charted)))
    assert max(shown["y"]) < 10  # the ids (variance ~1e5) no longer set the log axis
    assert shown["bands"] == [f"transformer_layer_{i}" for i in range(4)]
    assert shown["blocks"] == ["0", "1", "2", "3"]
    assert _table_names(page) == stream
    screenshot(page, "page-bert-tiny-stream")
