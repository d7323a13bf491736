"""The console in Debian's Chromium, against Fluxo started as `make run` starts it.

Every page loads with no console error and no failed request; a hand
prediction answers as POST /v1/streams/{stream}/predict does; an upload
through the page counts as the API counts; a training run started from the
page ends with its model in the registry; the live table gets new
predictions without a reload; HTML in what users registered stays text.
A screenshot of each page is written to the test's directory (and to
$FLUXO_SCREENSHOT_DIR when set: that is how docs/screenshots are made).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from shared.streams import builtin_streams
from tests.console.browser import BrowserPage, Screenshot
from tests.console.evil import IMAGE, SCRIPT, evil_declaration, evil_name, evil_record
from tests.console.stack import API_KEY, Stack
from tests.gateway.files import csv_bytes, energy_table

KEY = {"X-API-Key": API_KEY}
LIVE_TIMEOUT_MS = 30_000  # a few refreshes of a live part
RUN_TIMEOUT_MS = 150_000  # a training run queued behind the scheduled ones


def open_page(page: Page, stack: Stack, path: str, ready: str) -> None:
    page.goto(f"{stack.url}{path}", wait_until="load")
    page.wait_for_selector(ready)


def wait_for_charts(page: Page, scope: str = "") -> int:
    """Every chart under scope drawn (a canvas with pixels); returns how many."""
    plots = page.locator(f"{scope} [data-line-chart]")
    count = plots.count()
    for index in range(count):
        plots.nth(index).locator("canvas").wait_for()
    return count


def enter_key(page: Page) -> None:
    page.fill("#api-key-input", API_KEY)
    page.click("[data-api-key-form] button[type=submit]")
    assert page.inner_text("[data-api-key-state]") == "key set"


def test_every_page_loads_cleanly(browser_page: BrowserPage, screenshot: Screenshot, console_stack: Stack) -> None:
    page = browser_page.page

    open_page(page, console_stack, "/", "[data-streams-table]")
    # Rates need two samples of the topics' offsets: the live part fills them in.
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-streams-table] tbody tr td:nth-child(2)')]"
        ".every(cell => cell.textContent.trim().endsWith('/s') && cell.textContent.trim() !== '—/s')",
        timeout=LIVE_TIMEOUT_MS,
    )
    page.wait_for_selector('[data-service="normalizer"] .status-up', timeout=LIVE_TIMEOUT_MS)
    assert page.locator("[data-streams-table] tbody tr").count() == len(builtin_streams())
    assert page.get_by_text("no model yet").count() == 0
    screenshot("overview")

    open_page(page, console_stack, "/streams", ".cards [data-stream]")
    screenshot("streams")

    for spec in builtin_streams():
        open_page(page, console_stack, f"/streams/{spec.name}", "[data-live-table]")
        charted = [task for task in spec.tasks if task.target and task.kind.value != "clustering"]
        for task in charted:
            page.wait_for_selector(f"#chart-{task.name}-versus canvas", timeout=LIVE_TIMEOUT_MS)
        assert wait_for_charts(page, "#stream-charts") == 2 * len(charted)
        if spec.name in ("consumption", "pressure"):
            if spec.name == "consumption":
                page.wait_for_selector("[data-total]", timeout=LIVE_TIMEOUT_MS)
            screenshot(f"stream-{spec.name}")

    open_page(page, console_stack, "/map", "circle.sensor")
    page.locator("circle.sensor").first.click()
    page.wait_for_selector("#sensor-detail [data-history-key]")
    key = page.locator("circle.sensor").first.get_attribute("data-sensor")
    assert page.inner_text("#sensor-detail [data-history-key]") == key
    assert page.locator("[data-alert-feed] li, [data-alerts-empty]").count() >= 1
    wait_for_charts(page, "#sensor-detail")
    screenshot("sensors")

    for path, ready in (("/predict-by-hand", "[data-predict-form]"), ("/data", "[data-upload-form]"),
                        ("/registry", "[data-models]")):
        open_page(page, console_stack, path, ready)
    # Read-only pages are open without the key, as the read-only API routes.
    assert page.inner_text("[data-api-key-state]") == "no key"
    browser_page.assert_no_problems()


def test_a_hand_prediction_answers_as_the_api(
    browser_page: BrowserPage, screenshot: Screenshot, console_stack: Stack
) -> None:
    page = browser_page.page
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("energy", "carbon", {"renewables_share_energy": 12.5, "fossil_share_energy": 70}),
        ("pressure", "anomaly", {"pressure_mca": 31.2, "media_hora": 30.8, "media_30d": 29.9, "std_30d": 1.4}),
    ]
    with console_stack.client() as api:
        for stream, task, record in cases:
            open_page(page, console_stack, f"/predict-by-hand?stream={stream}&task={task}", "[data-predict-form]")
            for name, value in record.items():
                page.fill(f"#in-{name}", str(value))
            for _ in range(5):  # the trainer may swap the model between the two answers: then ask again
                page.click("[data-predict-form] button[type=submit]")
                shown = page.wait_for_selector("[data-prediction]")
                version = int(page.inner_text("[data-model-version]"))
                answer = api.post(f"/v1/streams/{stream}/predict", json={"task": task, "record": record}).json()
                if answer["model_version"] == version:
                    break
                page.evaluate("() => document.querySelector('[data-prediction]').remove()")
            assert answer["model_version"] == version
            expected = answer["predictions"][0]
            value = shown.get_attribute("data-value")
            if "label" in expected:
                assert value == expected["label"]
                shown_probabilities = {
                    label: float(page.inner_text(f'[data-probability="{label}"]')) for label in expected["probabilities"]
                }
                assert shown_probabilities == {k: round(v, 4) for k, v in expected["probabilities"].items()}
            else:
                assert float(value or "nan") == expected["prediction"]
    screenshot("predict")
    browser_page.assert_no_problems()


def upload_file(tmp_path: Path) -> Path:
    rows = energy_table(60, seed=7)
    rows[4][3] = 150  # fossil share above its maximum
    rows[11][2] = "lots"  # not a number
    path = tmp_path / "energy.csv"
    path.write_bytes(csv_bytes(rows))
    return path


def test_an_upload_through_the_page_counts_as_the_api(
    browser_page: BrowserPage, screenshot: Screenshot, console_stack: Stack, tmp_path: Path
) -> None:
    page = browser_page.page
    file = upload_file(tmp_path)
    open_page(page, console_stack, "/data", "[data-upload-form]")
    assert page.locator("[data-key-notice]").is_visible()
    page.select_option("#upload-stream", "energy")
    page.set_input_files("#upload-file", str(file))

    # Without the key the gateway refuses, and the console asks for it.
    page.click("[data-upload-form] button[type=submit]")
    page.wait_for_selector("#upload-result [data-refused]")
    assert page.inner_text("[data-api-key-state]") == "key needed"
    enter_key(page)
    page.click("[data-upload-form] button[type=submit]")
    page.wait_for_selector("#upload-result [data-upload-result]")
    assert page.eval_on_selector("[data-upload-progress]", "bar => bar.value") == 100
    assert page.inner_text("[data-upload-percent]") == "done"
    shown = {name: int(page.inner_text(f'[data-count="{name}"]')) for name in ("total", "accepted", "rejected")}
    rejected = [
        [cell.inner_text() for cell in row.locator("td").all()] for row in page.locator("[data-rejected] tbody tr").all()
    ]

    with console_stack.client() as api:
        answer = api.post("/upload", headers=KEY, data={"stream": "energy"},
                          files={"file": (file.name, file.read_bytes(), "text/csv")}).json()
    assert shown == {"total": answer["rows_total"], "accepted": answer["rows_accepted"],
                     "rejected": answer["rows_rejected"]} == {"total": 60, "accepted": 58, "rejected": 2}
    assert rejected == [[str(p["row"]), p["field"], p["reason"]] for p in answer["rejected"]]
    screenshot("data-upload")
    # The refusal before the key was given is the only thing allowed to have gone wrong.
    browser_page.assert_no_problems("401")


def test_a_training_run_started_from_the_page_lands_in_the_registry(
    browser_page: BrowserPage, screenshot: Screenshot, console_stack: Stack
) -> None:
    page = browser_page.page
    open_page(page, console_stack, "/data", "[data-train-form]")
    enter_key(page)
    page.select_option("#train-task", "energy/carbon")
    # Choosing a task reloads the form with that task's algorithms and uploads.
    page.wait_for_selector('#train-task option[value="energy/carbon"][selected]', state="attached")
    page.select_option("#train-algorithm", "mlp")
    page.fill("#train-layers", "16, 8")
    page.fill("#train-epochs", "40")
    page.fill("#train-batch", "32")
    page.click("[data-train-form] button[type=submit]")
    page.wait_for_selector("[data-run-status]")
    page.wait_for_selector("[data-run-status=done], [data-run-status=failed]", timeout=RUN_TIMEOUT_MS)
    assert page.get_attribute("[data-run-status]", "data-run-status") == "done", page.inner_text(".run-status")
    model_id = page.get_attribute("[data-run-model]", "data-run-model")
    assert model_id and page.locator("[data-decision]").is_visible()
    screenshot("data")

    page.click("[data-run-model]")
    page.wait_for_url(f"**/registry#model-{model_id}")
    row = page.locator(f"#model-{model_id}")
    row.wait_for()
    assert row.get_attribute("data-stream") == "energy" and row.get_attribute("data-task") == "carbon"
    assert "mlp" in row.inner_text()
    with console_stack.client() as api:
        assert api.get(f"/models/{model_id}").json()["hyperparameters"]["hidden_layer_sizes"] == [16, 8]
    with page.expect_download() as download:  # the artifact, fetched with the key this tab holds
        row.locator("[data-download]").click()
    assert download.value.suggested_filename.startswith("energy-carbon-v")
    screenshot("registry")
    browser_page.assert_no_problems()


def test_the_live_table_gets_new_predictions_without_a_reload(
    browser_page: BrowserPage, console_stack: Stack
) -> None:
    page = browser_page.page
    open_page(page, console_stack, "/streams/energy", "[data-live-table] tr[data-event-id]")
    page.evaluate("() => { window.fluxoTestMark = 'still this page'; }")
    before = page.eval_on_selector_all("tr[data-event-id]", "rows => rows.map(row => row.dataset.eventId)")
    page.wait_for_function(
        "before => [...document.querySelectorAll('tr[data-event-id]')].some(row => !before.includes(row.dataset.eventId))",
        arg=before, timeout=LIVE_TIMEOUT_MS,
    )
    assert page.evaluate("() => window.fluxoTestMark") == "still this page"
    assert page.locator("tr[data-event-id].fresh").count() >= 1  # the new rows are marked
    browser_page.assert_no_problems()


def test_html_in_what_users_registered_stays_text(browser_page: BrowserPage, console_stack: Stack) -> None:
    page = browser_page.page
    name = evil_name()
    with console_stack.client() as api:
        assert api.post("/v1/streams", headers=KEY, json=evil_declaration(name)).status_code == 201
        sent = api.post(f"/v1/streams/{name}/events", headers=KEY, json={"record": evil_record()})
        assert sent.status_code == 200, sent.text

    def stream_known() -> bool:
        with console_stack.client() as api:
            return api.get(f"/streams/{name}").status_code == 200

    console_stack.wait(f"the console's page of {name}", stream_known, 30)
    open_page(page, console_stack, f"/streams/{name}", "[data-stream-name]")
    assert page.get_by_text(f"A stream described with {IMAGE}").count() == 1
    page.wait_for_selector("[data-live-table] tr[data-event-id]", timeout=LIVE_TIMEOUT_MS)
    row = page.locator("[data-live-table] tr[data-event-id]").first
    assert row.locator("td").nth(1).inner_text() == SCRIPT  # the key, as typed
    assert page.get_by_role("cell", name=SCRIPT).count() >= 2  # and the category in the context

    open_page(page, console_stack, f"/predict-by-hand?stream={name}", "[data-predict-form]")
    assert SCRIPT in page.locator("#in-colour option").all_inner_texts()
    assert page.get_by_text(IMAGE).count() >= 1

    for path in ("/", "/streams"):
        open_page(page, console_stack, path, "main")
    # Nothing ran: no dialog (recorded as a problem), no element made from the text.
    assert page.locator("img[src=x]").count() == 0
    browser_page.assert_no_problems()

