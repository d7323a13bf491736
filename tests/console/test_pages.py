"""Every console page and partial rendered with the real templates, by a
gateway in this process (FastAPI's TestClient) that reads the data of the
stack `make run` started: its database, topics and model bundles.

Forms are posted as a browser posts them; their answers are compared with
the JSON API's for the same input.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from html import unescape
from typing import TypeVar

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Route

from services.gateway.app import create_app
from services.gateway.console.live.window import totalled_columns
from services.gateway.console.routes import PAGES
from services.gateway.console.templating import CONTENT_SECURITY_POLICY
from services.gateway.settings import GatewaySettings
from shared.infra.ports import free_port
from shared.streams import builtin_streams
from tests.console.evil import IMAGE, SCRIPT, evil_declaration, evil_name, evil_record
from tests.console.stack import API_KEY, Stack
from tests.gateway.files import csv_bytes, energy_table

KEY = {"X-API-Key": API_KEY}
T = TypeVar("T")


@pytest.fixture(scope="module")
def client(console_stack: Stack) -> Iterator[TestClient]:
    settings = GatewaySettings(
        kafka_bootstrap_servers=console_stack.kafka_bootstrap,
        database_url=console_stack.database_url,
        topic_prefix=console_stack.topic_prefix,
        artifact_dir=console_stack.artifact_dir,
        fluxo_api_key=API_KEY,
        service_name="gateway-console-test",
        console_sample_seconds=1.0,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def eventually(what: str, check: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def html_page(client: TestClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:500]}"
    assert response.headers["content-type"] == "text/html; charset=utf-8", path
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
    return response.text


def fragment(client: TestClient, path: str, params: dict[str, str] | None = None) -> str:
    response = client.get(path, params=params)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:500]}"
    assert response.headers["content-type"] == "text/html; charset=utf-8", path
    assert "<html" not in response.text, f"{path} is a fragment, not a page"
    return response.text


def sensor_key(client: TestClient) -> str:
    sensors = eventually("a sensor with a latest state", lambda: client.get("/sensors").json())
    return sensors[0]["key"]


STREAMS = [spec.name for spec in builtin_streams()]
PAGE_PATHS = [
    "/", "/streams", *[f"/streams/{name}" for name in STREAMS], "/map", "/map?stream=pressure",
    "/predict-by-hand", "/predict-by-hand?stream=energy&task=carbon", "/predict-by-hand?ref=pressure/anomaly",
    "/predict-by-hand?stream=consumption", "/data", "/registry",
]
PARTIAL_PATHS = [
    "/overview/live", *[f"/streams/{name}/live" for name in STREAMS], *[f"/streams/{name}/charts" for name in STREAMS],
    "/map/pressure/plot", "/map/pressure/alerts", "/data/train-form?ref=energy/carbon", "/registry/live",
]
# Partials whose path needs a value found at run time (a sensor, a run).
RUNTIME_PATHS = {"/map/{stream}/sensor", "/data/runs/{run_id}"}


def test_every_console_route_is_rendered_here() -> None:
    templates = set()
    for module in PAGES:
        for route in module.router.routes:
            assert isinstance(route, Route)
            if "GET" in (route.methods or set()):
                templates.add(route.path)
    covered = {re.sub(r"\?.*", "", path) for path in PAGE_PATHS + PARTIAL_PATHS}

    def matches(template: str) -> bool:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        return any(re.match(pattern, path) for path in covered)

    assert {t for t in templates if not matches(t)} == RUNTIME_PATHS


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_every_page_renders(client: TestClient, path: str) -> None:
    html = html_page(client, path)
    assert "<title>" in html and 'aria-current="page"' in html
    assert "Not available now" not in html, "a read failed while the database is up"


@pytest.mark.parametrize("path", PARTIAL_PATHS)
def test_every_partial_renders(client: TestClient, path: str) -> None:
    html = fragment(client, path)
    assert "Not available now" not in html


def test_overview_shows_every_stream_model_and_service(client: TestClient, console_stack: Stack) -> None:
    # Rates need two samples of the offsets and the workers' groups one: the partial fills in.
    def measured() -> str | None:
        html = fragment(client, "/overview/live")
        return html if "—/s" not in html.split("Services")[0] and 'data-service="trainer"><span class="status status-up"' in html else None

    html = eventually("rates and the workers' groups on the overview", measured)
    rows = dict(re.findall(r'<tr data-stream="(\w+)">(.*?)</tr>', html, re.S))
    for spec in builtin_streams():
        row = rows[spec.name]
        for task in spec.tasks:
            assert f'data-task="{task.name}"' in row
        assert "no model yet" not in row  # the stack has a model for every built-in task
    for service in ("gateway", "kafka", "postgres", "normalizer", "consumer"):
        assert f'data-service="{service}"><span class="status status-up">' in html, service
    assert 'data-service="generator"><span class="status status-unknown">' in html


def test_stream_page_shows_predictions_with_actuals_and_totals(client: TestClient) -> None:
    spec = next(s for s in builtin_streams() if totalled_columns(s))
    columns = [name for name, _ in totalled_columns(spec)]

    def totals_shown() -> str | None:
        html = fragment(client, f"/streams/{spec.name}/live")
        return html if all(f'data-total="{name}"' in html for name in columns) and "data-live-table" in html else None

    html = eventually(f"totals of {columns} on {spec.name}'s page", totals_shown)
    for name in columns:
        value = re.search(rf'data-total="{name}">.*?<span class="metric">([^<]+)<', html, re.S)
        assert value is not None and float(value.group(1).replace(",", "")) > 0, name
    assert re.search(r"Totals over the [\d,]+ events", html)
    rows = re.findall(r'<tr data-event-id="([^"]+)">', html)
    assert len(rows) >= 5
    charts = fragment(client, f"/streams/{spec.name}/charts")
    for task in spec.tasks:
        assert f'id="chart-{task.name}-versus"' in charts and f'id="chart-{task.name}-rolling"' in charts


def test_sensor_history_and_the_history_partial(client: TestClient) -> None:
    key = sensor_key(client)
    html = fragment(client, "/map/pressure/sensor", params={"key": key})
    assert f"<h2 data-history-key>{key}</h2>" in html
    assert "data-history-hours" in html  # the hourly table from the predictions table
    plot = fragment(client, "/map/pressure/plot")
    assert plot.count("<circle class=\"sensor") == len(client.get("/sensors").json())


def test_hand_prediction_answers_as_the_api(client: TestClient) -> None:
    record = {"renewables_share_energy": "12.5", "fossil_share_energy": "70"}
    for _ in range(5):  # the trainer may swap the model between the two calls: then ask again
        api = client.post("/v1/streams/energy/predict", json={"task": "carbon", "record": record}).json()
        html = client.post("/predict-by-hand/energy/carbon", data=record).text
        version = re.search(r"data-model-version>(\d+)<", html)
        assert version is not None, html
        if int(version.group(1)) == api["model_version"]:
            break
    shown = re.search(r'data-prediction data-value="([^"]+)"', html)
    assert shown is not None, html
    assert float(shown.group(1)) == api["predictions"][0]["prediction"]


def test_hand_classification_shows_every_class_probability(client: TestClient) -> None:
    record = {"pressure_mca": "31.2", "media_hora": "30.8", "media_30d": "29.9", "std_30d": "1.4"}
    api = client.post("/v1/streams/pressure/predict", json={"task": "anomaly", "record": record}).json()
    html = client.post("/predict-by-hand/pressure/anomaly", data=record).text
    answer = api["predictions"][0]
    for label, probability in answer["probabilities"].items():
        assert f'data-probability="{label}">{probability:.4f}<' in html
    assert f'data-value="{answer["label"]}"' in html


def test_a_refused_hand_input_is_shown_next_to_its_field(client: TestClient) -> None:
    response = client.post("/predict-by-hand/energy/carbon",
                           data={"renewables_share_energy": "140", "fossil_share_energy": "20"})
    assert response.status_code == 422
    error = re.search(r'<div class="field has-error" data-field="([^"]+)">.*?data-field-error="\1">([^<]+)<',
                      response.text, re.S)
    assert error is not None and error.groups() == ("renewables_share_energy", "above maximum 100")
    assert 'value="140"' in response.text  # what was typed stays in the form


def test_forms_that_change_things_need_the_key(client: TestClient) -> None:
    file = csv_bytes(energy_table(5))
    refused = client.post("/data/upload", data={"stream": "energy"}, files={"file": ("e.csv", file, "text/csv")})
    assert refused.status_code == 401 and "The API key is needed" in refused.text
    for path in ("/data/infer", "/data/register", "/data/train"):
        assert client.post(path, data={}).status_code == 401, path
    for path in PAGE_PATHS:  # reading needs no key, as the read-only API routes
        assert client.get(path).status_code == 200, path


def test_upload_through_the_form_counts_as_the_api(client: TestClient) -> None:
    rows = energy_table(40, seed=3)
    rows[5][3] = 150  # fossil share above its maximum
    rows[9][2] = "lots"  # not a number
    file = csv_bytes(rows)
    api = client.post("/upload", headers=KEY, data={"stream": "energy"}, files={"file": ("e.csv", file, "text/csv")})
    form = client.post("/data/upload", headers=KEY, data={"stream": "energy"},
                       files={"file": ("e.csv", file, "text/csv")})
    assert api.status_code == 200 and form.status_code == 200, form.text
    answer = api.json()
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', form.text))
    assert counts == {"total": str(answer["rows_total"]), "accepted": str(answer["rows_accepted"]),
                      "rejected": str(answer["rows_rejected"])}
    assert answer["rows_rejected"] == 2
    shown = re.findall(r'<td class="number">(\d+)</td><td><code>(\w+)</code></td><td>([^<]+)</td>', form.text)
    assert [(int(r), f, unescape(why)) for r, f, why in shown] == [
        (p["row"], p["field"], p["reason"]) for p in answer["rejected"]
    ]


def test_infer_then_register_from_the_forms(client: TestClient) -> None:
    name = f"houses_{int(time.time() * 1000) % 10**8}"
    rows = [["area_m2", "rooms", "district", "price"]] + [
        [40 + i, 1 + i % 5, ("north", "south", "centre")[i % 3], 1000 * (40 + i) + 5000 * (i % 3)] for i in range(60)
    ]
    proposed = client.post("/data/infer", headers=KEY, data={"target": "price", "name": name},
                           files={"file": ("houses.csv", csv_bytes(rows), "text/csv")})
    assert proposed.status_code == 200, proposed.text
    declaration = re.search(r'<textarea id="declaration" name="declaration"[^>]*>(.*?)</textarea>', proposed.text, re.S)
    assert declaration is not None
    text = unescape(declaration.group(1))
    assert f"name: {name}" in text and "target: price" in text
    registered = client.post("/data/register", headers=KEY, data={"declaration": text})
    assert registered.status_code == 200 and f'data-registered="{name}"' in registered.text
    assert client.get(f"/v1/streams/{name}").json()["version"] == 1
    again = client.post("/data/register", headers=KEY, data={"declaration": text})
    assert "nothing changed" in again.text
    broken = client.post("/data/register", headers=KEY, data={"declaration": text.replace("target: price", "target: cost")})
    assert broken.status_code == 422 and "tasks[0].target" in broken.text
    page = html_page(client, f"/streams/{name}")  # a registered stream has a page of its own
    assert f"<span data-stream-name>{name}</span>" in page


def test_training_form_refuses_bad_inputs_then_runs(client: TestClient) -> None:
    bad = client.post("/data/train", headers=KEY, data={"ref": "energy/carbon", "algorithm": "mlp",
                                                        "hidden_layer_sizes": "8, wide", "epochs": "many"})
    assert bad.status_code == 422
    assert dict(re.findall(r'data-field-error="(\w+)">([^<]+)<', bad.text)).keys() == {"hidden_layer_sizes", "epochs"}
    out_of_range = client.post("/data/train", headers=KEY, data={"ref": "energy/carbon", "algorithm": "mlp",
                                                                 "hidden_layer_sizes": "8", "epochs": "0"})
    assert out_of_range.status_code == 422 and 'data-field-error="hyperparameters"' in out_of_range.text
    started = client.post("/data/train", headers=KEY, data={
        "ref": "energy/carbon", "algorithm": "mlp", "hidden_layer_sizes": "8", "epochs": "20", "batch_size": "32"})
    assert started.status_code == 200, started.text
    run_id = re.search(r'data-run="(\w+)"', started.text)
    assert run_id is not None

    def finished() -> str | None:
        html = fragment(client, f"/data/runs/{run_id.group(1)}")
        return html if re.search(r'data-run-status="(done|failed)"', html) else None

    html = eventually("the run to finish", finished, timeout=120)
    assert 'data-run-status="done"' in html, html
    assert "hx-trigger" not in html  # a finished run stops polling
    model = re.search(r'data-run-model="(\d+)"', html)
    assert model is not None and "Decision:" in html
    assert f'data-model-id="{model.group(1)}"' in fragment(client, "/registry/live")


def test_html_from_users_and_streams_is_text(client: TestClient) -> None:
    name = evil_name()
    assert client.post("/v1/streams", headers=KEY, json=evil_declaration(name)).status_code == 201
    sent = client.post(f"/v1/streams/{name}/events", headers=KEY, json={"record": evil_record()})
    assert sent.status_code == 200, sent.text
    pages = [f"/streams/{name}", f"/predict-by-hand?stream={name}", "/streams", "/", "/data"]

    def scored_row_shown() -> str | None:
        html = fragment(client, f"/streams/{name}/live")
        return html if "data-event-id" in html else None

    live = eventually("the event on the stream's page", scored_row_shown)
    for html in [live, *(html_page(client, path) for path in pages)]:
        assert SCRIPT not in html and IMAGE not in html
    stream_page = html_page(client, f"/streams/{name}")
    assert "&lt;script&gt;alert(&#39;fluxo-xss&#39;)&lt;/script&gt;" in stream_page
    assert "&lt;img src=&#34;x&#34; onerror=&#34;alert(1)&#34;&gt;" in stream_page
    assert "&lt;script&gt;" in live
    predict = html_page(client, f"/predict-by-hand?stream={name}")
    assert '<option value="&lt;script&gt;alert(&#39;fluxo-xss&#39;)&lt;/script&gt;">' in predict


def test_the_overview_shows_kafka_down_and_still_answers(client: TestClient) -> None:
    """The console's sampler pointed at a port where no broker listens: the
    overview says Kafka is down (and that the workers cannot be asked)
    instead of waiting for it."""
    fragment(client, "/overview/live")  # the console's readers are running
    sampler = client.app.state.console_runtime.sampler
    broker = sampler.bootstrap
    sampler.bootstrap = f"127.0.0.1:{free_port()}"
    client.portal.call(sampler.close)  # the next sample connects afresh, to nothing
    try:
        html = eventually("Kafka shown down", lambda: (
            page if 'data-service="kafka"><span class="status status-down">' in (page := fragment(client, "/overview/live"))
            else None))
        for worker in ("normalizer", "consumer", "trainer"):
            assert f'data-service="{worker}"><span class="status status-unknown">' in html
        assert "last answered" in html
    finally:
        sampler.bootstrap = broker
        client.portal.call(sampler.close)
    eventually("Kafka shown up again", lambda: 'data-service="kafka"><span class="status status-up">'
               in fragment(client, "/overview/live"))
