"""The console's pure parts and its Kafka sampler against a broker that does
not answer: no stack, no browser."""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import TopicPartition
from starlette.requests import Request

from services.gateway.console.charts import line_chart
from services.gateway.console.formatting import age, cell, number, rate
from services.gateway.console.live.rates import OffsetSample, RateHistory, lag_by_topic
from services.gateway.console.live.sampler import PipelineSampler, worker_of
from services.gateway.console.live.window import DeadLetter, StreamWindow, totalled_columns
from services.gateway.console.templating import CONTENT_SECURITY_POLICY, headers_for, make_environment
from services.gateway.console.views.accuracy import accuracy_charts, swaps
from services.gateway.console.views.mapview import TILE, layout, mercator
from services.gateway.console.views.models import decision_reason, roles
from services.gateway.console.views.predict import as_input_value, form_fields, record_from_form
from services.gateway.console.views.registry import ModelRow, RegistryView
from services.gateway.console.views.stream import shown_columns
from services.gateway.console.views.training import FormInvalid, train_request
from services.gateway.settings import GatewaySettings
from shared.infra._common import run_coroutine
from shared.infra.ports import free_port
from shared.ml.registry import ModelRecord
from shared.streams import FieldSpec, FieldType, TaskKind, builtin_streams, parse_declaration
from shared.topics import Topics
from tests.console.evil import evil_declaration

TILES = "https://tiles.example.org/{z}/{x}/{y}.png"


def spec_with_totals():
    return next(s for s in builtin_streams() if totalled_columns(s))


def test_a_broker_that_does_not_answer_is_shown_down() -> None:
    port = free_port()  # nothing listens there
    sampler = PipelineSampler(f"127.0.0.1:{port}", Topics("x."), lambda: ["energy"], interval=1.0, timeout=2.0)
    run_coroutine(sampler.sample())
    assert sampler.kafka_up is False and sampler.error
    assert sampler.last_ok_at is None
    assert sampler.rate("x.raw.energy") is None and sampler.workers == {}
    run_coroutine(sampler.close())


def test_rates_over_the_horizon() -> None:
    history = RateHistory(horizon=60)
    assert history.rate("t") is None
    history.add(OffsetSample(0.0, {"t": 100}))
    assert history.rate("t") is None  # one sample is no rate
    history.add(OffsetSample(5.0, {"t": 150}))
    assert history.rate("t") == 10.0
    for at in range(10, 200, 5):
        history.add(OffsetSample(float(at), {"t": 150 + 2 * (at - 5)}))
    assert history.rate("t") == pytest.approx(2.0)  # the old burst is past the horizon
    history.add(OffsetSample(200.0, {"t": 0}))  # the topic was made again
    assert history.rate("t") == 0.0
    assert history.rate("other") is None


def test_lag_counts_what_a_group_has_not_read() -> None:
    ends = {TopicPartition("a", 0): 10, TopicPartition("a", 1): 5, TopicPartition("b", 0): 7}
    # Partition a/1 never committed: all of it is behind; topic b is not the group's.
    assert lag_by_topic(ends, {TopicPartition("a", 0): 8}) == {"a": 7}
    assert lag_by_topic(ends, {TopicPartition("a", 0): 10, TopicPartition("a", 1): 5}) == {"a": 0}


def test_worker_groups_are_recognised_by_their_default_names() -> None:
    assert worker_of("p.normalizer", "p.") == "normalizer"
    assert worker_of("p.consumer", "p.") == "consumer"
    assert worker_of("p.trainer-all", "p.") == "trainer"
    assert worker_of("normalizer", "") == "normalizer"
    assert worker_of("q.normalizer", "p.") is None
    assert worker_of("p.consumers", "p.") is None


def test_the_totalled_columns_are_the_quantities_declared_with_a_unit() -> None:
    spec = spec_with_totals()
    declared = [(d.name, d.unit) for d in spec.derived if d.unit]
    assert totalled_columns(spec) == tuple(declared)
    ratio = parse_declaration({**evil_declaration("ratios"), "derived": [
        {"name": "per_size", "expression": "size / 2", "unit": "kg/m"},
        {"name": "share", "expression": "size * 10", "unit": "%"},
        {"name": "doubled", "expression": "size * 2", "unit": "kg"}]})
    assert totalled_columns(ratio) == (("doubled", "kg"),)


def test_a_stream_window_totals_each_event_once_and_keeps_the_newest() -> None:
    spec = spec_with_totals()
    window = StreamWindow.of(spec, size=3)
    column = totalled_columns(spec)[0][0]
    for i in range(5):
        window.add({"event_id": f"e{i}", "features": {column: 1.5}, "produced_at": f"2026-01-01T00:00:0{i}+00:00"})
    window.add({"event_id": "e4", "features": {column: 1.5}})  # redelivered
    window.add({"features": {column: 9.0}})  # no id: not an event
    assert window.totals[column].value == 7.5 and window.counted == 5
    assert [e["event_id"] for e in window.latest(10)] == ["e4", "e3", "e2"]
    assert window.event("e0") is None and window.event("e3") is not None
    assert window.since() == datetime(2026, 1, 1, tzinfo=UTC)
    now = time.time()
    for at in (now - 120, now - 30, now - 10, now - 1):
        window.add_dead_letter(DeadLetter(at, "raw.x", "bad"))
    assert window.dead_letter_rate(now, horizon=60) == 3 / 60


def test_model_swaps_are_marked_and_each_version_has_its_rolling_error() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {"scored_at": start + timedelta(seconds=i), "produced_at": None, "prediction": float(i),
         "actual": float(i) + (1 if i < 4 else 3), "error": -1.0 if i < 4 else -3.0, "model_version": 1 if i < 4 else 2}
        for i in range(8)
    ]
    assert swaps(rows) == [((start + timedelta(seconds=4)).timestamp(), "v2")]
    versus, rolling = accuracy_charts(TaskKind.REGRESSION, rows)
    assert [s["label"] for s in versus["series"]] == ["actual", "prediction"]
    assert versus["markers"] == [{"x": (start + timedelta(seconds=4)).timestamp(), "label": "v2"}]
    by_label = {s["label"]: s["values"] for s in rolling["series"]}
    assert by_label["v1 mean absolute error"] == [1.0] * 4 + [None] * 4
    assert by_label["v2 mean absolute error"] == [None] * 4 + [3.0] * 4
    classified = [{**row, "error": 0.0 if i % 2 else 1.0} for i, row in enumerate(rows)]
    _, rolling = accuracy_charts(TaskKind.CLASSIFICATION, classified)
    assert {s["label"]: s["values"][3] for s in rolling["series"]}["v1 error rate"] == 0.5


def test_line_charts_carry_no_value_json_cannot_hold() -> None:
    chart = line_chart([1, 2, 3], {"a": [1.0, math.nan, math.inf]}, markers=[(2, "v2")])
    assert chart["series"] == [{"label": "a", "values": [1.0, None, None]}]
    with pytest.raises(ValueError, match="'load' has 2 values for 3 x positions"):
        line_chart([1, 2, 3], {"load": [1.0, 2.0]})


def test_points_are_placed_by_web_mercator_inside_the_plot() -> None:
    entities = [
        {"key": "a", "latitude": 39.20, "longitude": -76.60, "area": "west"},
        {"key": "b", "latitude": 39.35, "longitude": -76.47, "area": "east"},
        {"key": "c", "latitude": 39.27, "longitude": -76.52, "area": "east"},
        {"key": "lost", "latitude": None, "longitude": 3.0},
    ]
    placed = layout(entities, 720, 480, padding=24)
    assert placed.unplaced == 1 and placed.tiles == []
    points = {p.entity["key"]: p for p in placed.points}
    assert all(24 - 1e-9 <= p.x <= 696 + 1e-9 and 24 - 1e-9 <= p.y <= 456 + 1e-9 for p in points.values())
    assert points["a"].x < points["c"].x < points["b"].x  # west to east
    assert points["b"].y < points["c"].y < points["a"].y  # north is up
    assert [label.name for label in placed.areas] == ["east", "west"]
    assert mercator(0, 0) == (128.0, 128.0)
    single = layout(entities[:1], 720, 480)
    assert (single.points[0].x, single.points[0].y) == (360, 240)


def test_map_tiles_cover_the_plot_and_line_up_with_the_points() -> None:
    entities = [{"key": "a", "latitude": 39.20, "longitude": -76.60}, {"key": "b", "latitude": 39.35, "longitude": -76.47}]
    placed = layout(entities, 720, 480, tiles_url=TILES)
    assert placed.tiles
    zoom = int(placed.tiles[0].href.split("/")[3])
    assert all(tile.size == TILE and tile.href.startswith(f"https://tiles.example.org/{zoom}/") for tile in placed.tiles)
    # The tiles cover the whole view.
    assert min(t.x for t in placed.tiles) <= 0 and max(t.x + t.size for t in placed.tiles) >= 720
    assert min(t.y for t in placed.tiles) <= 0 and max(t.y + t.size for t in placed.tiles) >= 480
    # Point a sits on the tile whose numbers contain it at that zoom.
    world_x, world_y = (v * 2**zoom for v in mercator(39.20, -76.60))
    x, y = int(world_x // TILE), int(world_y // TILE)
    tile = next(t for t in placed.tiles if t.href.endswith(f"/{zoom}/{x}/{y}.png"))
    point = next(p for p in placed.points if p.entity["key"] == "a")
    assert tile.x <= point.x <= tile.x + TILE and tile.y <= point.y <= tile.y + TILE
    assert point.x - tile.x == pytest.approx(world_x - x * TILE)


def request_for(settings: GatewaySettings) -> Request:
    class App:
        class state:  # noqa: N801 - stands in for app.state
            gateway = type("Gateway", (), {"settings": settings})()

    return Request({"type": "http", "app": App, "headers": []})


def test_the_content_security_policy_allows_only_the_tile_server_besides_this_origin() -> None:
    assert headers_for(request_for(GatewaySettings()))["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    policy = headers_for(request_for(GatewaySettings(console_map_tiles_url=TILES)))["Content-Security-Policy"]
    assert "img-src 'self' data: https://tiles.example.org;" in policy
    assert "script-src 'self';" in policy and "connect-src 'self';" in policy
    assert GatewaySettings(console_map_tiles_url="").console_map_tiles_url is None
    with pytest.raises(ValueError):
        GatewaySettings(console_map_tiles_url="javascript:alert(1)//{z}")


def test_the_hand_form_follows_the_declared_inputs() -> None:
    fields = (
        FieldSpec(name="n", type=FieldType.INT, minimum=1, maximum=9),
        FieldSpec(name="kind", type=FieldType.CATEGORY, categories=("a", "b")),
        FieldSpec(name="tag", type=FieldType.CATEGORY, categories=("x",), open=True, required=False),
        FieldSpec(name="at", type=FieldType.DATETIME),
        FieldSpec(name="flag", type=FieldType.BOOL, required=False),
    )
    form = {f.name: f for f in form_fields(fields, {"n": "3"}, {"kind": "not one of a, b"})}
    assert (form["n"].kind, form["n"].minimum, form["n"].maximum, form["n"].step, form["n"].value) == (
        "number", 1, 9, "1", "3")
    assert (form["kind"].kind, form["kind"].options, form["kind"].error) == ("choice", ("a", "b"), "not one of a, b")
    assert form["tag"].open_choice and not form["tag"].required
    assert (form["at"].kind, form["flag"].kind) == ("datetime", "boolean")
    record, given = record_from_form(fields, {"n": " 4 ", "kind": "a", "tag": "", "at": "2026-01-12T07:00:00"})
    assert record == {"n": "4", "kind": "a", "at": "2026-01-12T07:00:00"}  # the empty optional input is absent
    assert given["tag"] == ""
    assert as_input_value(fields[3], "2026-01-12T08:00:00+01:00") == "2026-01-12T07:00:00"
    assert as_input_value(fields[4], True) == "true"


def test_the_training_form_becomes_a_train_request() -> None:
    spec = next(s for s in builtin_streams() if any(t.kind is TaskKind.REGRESSION for t in s.tasks))
    task = next(t for t in spec.tasks if t.kind is TaskKind.REGRESSION)
    body = train_request(spec, task, {"algorithm": "mlp", "hidden_layer_sizes": "64; 32", "epochs": "300",
                                      "batch_size": "16", "other": '{"alpha": 0.001}', "force": "on"})
    assert body == {"stream": spec.name, "task": task.name, "algorithm": "mlp", "force": True,
                    "hyperparameters": {"alpha": 0.001, "hidden_layer_sizes": [64, 32], "epochs": 300, "batch_size": 16}}
    trees = train_request(spec, task, {"algorithm": "random_forest", "hidden_layer_sizes": "8", "window": "500"})
    assert trees["hyperparameters"] == {} and trees["window"] == 500  # MLP inputs are for the MLP only
    with pytest.raises(FormInvalid) as refused:
        train_request(spec, task, {"algorithm": "mlp", "hidden_layer_sizes": "a", "epochs": "1.5", "other": "[1]"})
    assert set(refused.value.errors) == {"hidden_layer_sizes", "epochs", "other"}


def test_a_decision_has_a_reason() -> None:
    assert decision_reason({"reason": "better on the same rows"}) == "better on the same rows"
    assert decision_reason({"candidate_score": 0.9, "active_score": None}) == "candidate scored 0.9; there was no model to beat"
    assert decision_reason({"candidate_score": 0.8, "active_score": 0.9}) == "candidate scored 0.8 against the champion's 0.9"
    assert decision_reason({"candidate_score": None}) is None


def test_the_live_table_shows_the_context_and_the_totals() -> None:
    spec = spec_with_totals()
    totals = [name for name, _ in totalled_columns(spec)]
    columns = shown_columns(spec, totals)
    assert spec.key not in columns
    assert columns == [c for c in spec.context if c != spec.key] + [t for t in totals if t not in spec.context]


def test_numbers_rates_ages_and_cells_are_written_for_people() -> None:
    assert number(None) == "—" and number(1234567) == "1,234,567" and number(0.000123456) == "0.0001235"
    assert number(12.0) == "12" and number(True) == "True" and number("x") == "x"
    assert rate(None) == "—" and rate(2.345) == "2.3/s"
    assert age(30) == "30 s" and age(600) == "10 min" and age(7200 * 2) == "4 h" and age(86400 * 3) == "3 d"
    assert cell("2026-01-12T07:00:00+00:00") == "2026-01-12 07:00:00 UTC"
    assert cell("2026-01-12T07:00:00") == "2026-01-12 07:00:00"
    assert cell(0.5) == "0.5"


def test_the_registry_shows_each_models_aliases_drift_and_degradation() -> None:
    common = {"stream": "energy", "task": "carbon", "algorithm": "xgboost", "hyperparameters": {},
              "features": ["renewables_share_energy"], "metrics": {"r2": 0.9}, "training_window": {},
              "rows_trained": 500, "bundle_dir": "b", "sha256": {}, "size_bytes": 1, "run_id": None,
              "created_at": datetime(2026, 1, 1, tzinfo=UTC)}
    champion = ModelRecord(id=1, version=1, active=True, monitoring={"max_psi": 0.41, "degradation": 2.5}, **common)
    shadow = ModelRecord(id=2, version=2, active=False, shadow=True, **common)
    retired = ModelRecord(id=3, version=3, active=False, **common)
    rows = [ModelRow(record, roles(record), "r2", 0.9, False) for record in (champion, shadow, retired)]
    assert [row.roles for row in rows] == [["champion"], ["shadow"], []]
    html = make_environment().get_template("partials/registry_tables.html").render(view=RegistryView(rows, []))
    cells = re.findall(r"<td[^>]*data-monitoring>(.*?)</td>", html)
    assert cells == ["PSI 0.41, error 2.5&times;", "", ""]
    assert 'badge-shadow">shadow' in html and 'badge-champion">champion' in html
