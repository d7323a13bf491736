"""The consumer's pure parts: decoding, scoring, errors, outputs, rolling errors."""

from __future__ import annotations

import copy
import math

import numpy as np
import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from services.consumer.decode import decode_batch
from services.consumer.outputs import (
    alert_messages,
    alert_rows,
    entity_state_rows,
    parse_times,
    prediction_messages,
    prediction_rows,
    source_times,
)
from services.consumer.rolling import RollingErrors
from services.consumer.scoring import prediction_errors, score_batch
from services.consumer.store import ALERT_COLUMNS, ENTITY_COLUMNS, PREDICTION_COLUMNS
from shared.events import Alert, FeaturesEvent, Prediction
from shared.ml.inputs import event_inputs
from shared.streams import TaskKind
from shared.streams.catalog import Catalog
from shared.topics import Topics
from tests.ml.factory import serving_model
from tests.ml.synthetic import features_events
from tests.streams import ENERGY, PEOPLE, PRESSURE, STREAMS

TOPICS = Topics("t-")
CATALOG = Catalog(STREAMS.values())


def _records(events: list[FeaturesEvent] | list[bytes], topic: str) -> list[ConsumerRecord]:
    values = [e if isinstance(e, bytes) else e.to_bytes() for e in events]
    return [ConsumerRecord(topic, 0, i, 0, 0, b"k", v, None, 1, len(v), ()) for i, v in enumerate(values)]


def _batch(stream: str, events):
    batches, rejected = decode_batch(TOPICS, CATALOG, _records(events, TOPICS.features(stream)))
    assert not rejected
    return batches[stream]


@pytest.fixture(scope="module")
def energy_models():
    return {
        ("energy", "carbon"): serving_model(ENERGY, "carbon", version=3, model_id=30),
        ("energy", "cluster"): serving_model(ENERGY, "cluster", version=2, model_id=20),
    }


@pytest.fixture(scope="module")
def pressure_model():
    return serving_model(PRESSURE, "anomaly", version=5, model_id=50, n=800)


def test_bad_messages_are_rejected_with_reasons() -> None:
    good = features_events(PEOPLE, 2)
    values = [
        good[0].to_bytes(),
        b"{not json",
        b"[1, 2]",
        orjson.dumps({"event_id": "x", "features": [1]}),
        orjson.dumps({"features": {}}),
        orjson.dumps({"event_id": "y", "features": {}, "categories": [1]}),
        good[1].to_bytes(),
    ]
    batches, rejected = decode_batch(TOPICS, CATALOG, _records(values, TOPICS.features("people")))
    assert len(batches["people"]) == 2
    reasons = [r.reason for r in rejected]
    assert reasons[0].startswith("not JSON")
    assert reasons[1] == "expected a JSON object, got list"
    assert reasons[2] == "features: missing or not an object"
    assert reasons[3].startswith("event_id: missing")
    assert reasons[4] == "categories: not an object"


def test_events_of_an_unknown_or_archived_stream_are_rejected() -> None:
    events = features_events(PEOPLE, 1)
    batches, rejected = decode_batch(TOPICS, CATALOG, _records(events, TOPICS.features("nowhere")))
    assert not batches and "no active stream" in rejected[0].reason


def test_hot_path_output_validates_into_the_event_models(energy_models) -> None:
    events = features_events(ENERGY, 20, seed=3)
    batch = _batch("energy", events)
    results = score_batch(batch, energy_models)
    times = source_times(batch)
    for result in results:
        assert result.rows.tolist() == list(range(20))
        rows = prediction_rows(batch, result, parse_times(times))
        assert all(len(row) == len(PREDICTION_COLUMNS) for row in rows)
        messages = prediction_messages(TOPICS.predictions("energy"), rows, times, "2024-05-01T00:00:00+00:00")
        parsed = [Prediction.model_validate_json(m.value) for m in messages]
        assert [p.event_id for p in parsed] == [e.event_id for e in events]
        assert {p.model_version for p in parsed} == {result.model_version}
        assert {p.model_id for p in parsed} == {result.model_id}
        assert all(p.status == "scored" and p.prediction is not None for p in parsed)
        assert [m.key for m in messages] == [e.key.encode() for e in events]
        if result.task.kind is TaskKind.REGRESSION:
            # Every synthetic event carries its target: actual and error are recorded.
            assert all(p.actual is not None and p.error == pytest.approx(p.prediction - p.actual) for p in parsed)
            assert all(p.percent_error == pytest.approx(100 * p.error / abs(p.actual)) for p in parsed)
        else:
            assert all(p.actual is None and p.error is None for p in parsed)
            assert all(p.score is not None and p.score >= 0 for p in parsed)


def test_a_stream_without_a_model_is_unscored() -> None:
    batch = _batch("people", features_events(PEOPLE, 5))
    (result,) = score_batch(batch, {})
    assert result.status == "unscored" and result.model_version == 0 and result.model_id is None
    rows = prediction_rows(batch, result, parse_times(source_times(batch)))
    parsed = [Prediction.model_validate_json(m.value)
              for m in prediction_messages("p", rows, source_times(batch), "2024-01-01T00:00:00Z")]
    assert len(parsed) == 5
    assert all(p.status == "unscored" and p.prediction is None and p.model_version == 0 for p in parsed)
    # The actual is still recorded, the error is not (there is no prediction).
    assert all(p.actual is not None and p.error is None for p in parsed)


def test_an_event_lacking_a_task_input_is_not_scored_for_that_task_only(energy_models) -> None:
    events = [e.model_dump(mode="json") for e in features_events(ENERGY, 4)]
    del events[1]["features"]["carbon_intensity_elec"]  # the cluster task needs it; carbon does not
    del events[2]["targets"]["carbon_intensity_elec"]  # no label yet: still scored
    batch = _batch("energy", [orjson.dumps(e) for e in events])
    by_task = {r.task.name: r for r in score_batch(batch, energy_models)}
    assert by_task["cluster"].rows.tolist() == [0, 2, 3]
    assert by_task["carbon"].rows.tolist() == [0, 1, 2, 3]
    carbon = by_task["carbon"]
    assert np.isnan(carbon.actual[2]) and np.isnan(carbon.error[2]) and np.isfinite(carbon.prediction).all()


def test_absent_optional_features_are_answered_by_the_variant_trained_without_them(energy_models) -> None:
    carbon = ENERGY.task("carbon")
    model = energy_models[("energy", "carbon")]
    optional = carbon.optional_features[0]
    variant = model.variant_for(frozenset([optional]))
    assert variant is not None and variant is not model.main
    assert optional not in variant.features and optional in model.features
    events = [e.model_dump(mode="json") for e in features_events(ENERGY, 6, seed=4)]
    for event in events[::2]:
        del event["features"][optional]
    answer = model.predict(event_inputs(events, model.meta.inputs), 6, carbon.optional_features)
    assert answer.rows.tolist() == list(range(6)) and not answer.missing
    reduced = variant.score(variant.matrix(event_inputs(events[::2], variant.inputs), 3)).prediction
    full = model.main.score(model.main.matrix(event_inputs(events[1::2], model.meta.inputs), 3)).prediction
    np.testing.assert_allclose(answer.prediction[::2], reduced)
    np.testing.assert_allclose(answer.prediction[1::2], full)
    # A required input is never filled in: that row is refused and says which.
    required = next(f for f in carbon.features if f not in carbon.optional_features)
    events[1]["features"].pop(required, None)
    refused = model.predict(event_inputs(events, model.meta.inputs), 6, carbon.optional_features)
    assert 1 not in refused.rows.tolist() and refused.missing == {1: required}


def test_prediction_errors() -> None:
    actual = np.array([1.0, np.nan, 0.0, 1.0])
    classes = prediction_errors(TaskKind.CLASSIFICATION, np.array([1.0, 1.0, 1.0, 0.0]), actual)
    np.testing.assert_array_equal(classes, [0.0, np.nan, 1.0, 1.0])
    values = prediction_errors(TaskKind.REGRESSION, np.array([3.0, 2.0, 0.5, 1.0]), actual)
    np.testing.assert_array_equal(values, [2.0, np.nan, 0.5, 0.0])
    assert np.isnan(prediction_errors(TaskKind.CLUSTERING, np.array([1.0, 2.0, 0.0, 1.0]), actual)).all()
    assert np.isnan(prediction_errors(TaskKind.REGRESSION, None, actual)).all()


def test_rolling_errors_per_version() -> None:
    rolling = RollingErrors(size=3)
    key = ("people", "income", 1)
    assert rolling.update(key, TaskKind.REGRESSION, np.array([np.nan])) is None
    assert rolling.update(key, TaskKind.REGRESSION, np.array([1.0, -3.0])) == 2.0
    assert rolling.update(key, TaskKind.REGRESSION, np.array([np.nan, 5.0, -7.0])) == 5.0  # window of 3: 3, 5, 7
    classified = ("pressure", "anomaly", 2)
    assert rolling.update(classified, TaskKind.CLASSIFICATION, np.array([0.0, 1.0, 0.0, 0.0])) == pytest.approx(2 / 3)
    assert rolling.forget("people", "income", keep_version=2) == [key]
    assert rolling.value(key) is None and rolling.value(classified) is not None


def test_pressure_alerts_labels_and_entity_state(pressure_model) -> None:
    events = features_events(PRESSURE, 300, seed=9)
    batch = _batch("pressure", events)
    (result,) = score_batch(batch, {("pressure", "anomaly"): pressure_model})
    assert result.positive == 1 and result.labels is not None
    assert set(result.labels) <= {"true", "false"}
    assert all((label == "true") == (p == 1) for label, p in zip(result.labels, result.prediction, strict=True))
    assert set(result.actual_labels or []) <= {"true", "false"}
    alerts = alert_rows(batch, result)
    flagged = int((result.prediction == 1).sum())
    assert flagged > 0 and len(alerts) == flagged
    assert all(len(row) == len(ALERT_COLUMNS) for row in alerts)
    parsed = [Alert.model_validate_json(m.value) for m in alert_messages(TOPICS.alerts, alerts, "2024-01-01T00:00:00Z")]
    by_id = {e.event_id: e for e in events}
    for alert in parsed:
        source = by_id[alert.event_id]
        assert alert.key == source.key == source.context["sensor_id"]
        assert alert.area == source.context["neighbourhood"] and alert.task == "anomaly"
        assert alert.value == source.features[PRESSURE.task("anomaly").features[0]]
        assert alert.latitude == source.context["latitude"] and 0.5 <= alert.score <= 1
        assert alert.model_version == 5
    states = entity_state_rows(batch, result)
    assert all(len(row) == len(ENTITY_COLUMNS) for row in states)
    column = ENTITY_COLUMNS.index
    assert [row[column("key")] for row in states] == sorted({e.key for e in events})
    # Each entity's row is its newest reading, with the declared state values.
    for row in states:
        newest = max((e for e in events if e.key == row[column("key")]), key=lambda e: e.context["timestamp"])
        assert row[column("reading_at")].isoformat() == newest.context["timestamp"]
        assert row[column("state")] == {name: newest.features[name] for name in PRESSURE.entity.values}
        i = next(i for i, e in enumerate(batch.events) if e["event_id"] == newest.event_id)
        assert row[column("alert")] == bool(result.prediction[i] == 1)
        assert math.isclose(row[column("last_score")], result.score[i])


def test_entity_state_without_a_model_has_no_alert() -> None:
    batch = _batch("pressure", features_events(PRESSURE, 10))
    (result,) = score_batch(batch, {})
    assert alert_rows(batch, result) == []
    rows = entity_state_rows(batch, None)
    assert rows and all(row[ENTITY_COLUMNS.index("alert")] is False for row in rows)


def test_a_model_that_raises_leaves_failed_rows_under_its_own_version(energy_models) -> None:
    """Before, such rows said 'unscored' with version 0: "no model yet"."""
    from prometheus_client import REGISTRY

    broken = copy.copy(energy_models[("energy", "carbon")])

    def predict(*args, **kwargs):
        raise RuntimeError("onnxruntime: invalid input shape")

    broken.predict = predict
    models = {**energy_models, ("energy", "carbon"): broken}
    before = REGISTRY.get_sample_value("fluxo_scoring_failures_total", {"stream": "energy", "task": "carbon"}) or 0
    batch = _batch("energy", features_events(ENERGY, 6))
    results = {r.task.name: r for r in score_batch(batch, models)}
    carbon, cluster = results["carbon"], results["cluster"]
    assert (carbon.status, carbon.model_version, carbon.model_id, carbon.prediction) == ("failed", 3, 30, None)
    assert cluster.status == "scored", "the other task of the stream is scored all the same"
    assert REGISTRY.get_sample_value("fluxo_scoring_failures_total", {"stream": "energy", "task": "carbon"}) == before + 1
    rows = prediction_rows(batch, carbon, parse_times(source_times(batch)))
    parsed = [Prediction.model_validate_json(m.value)
              for m in prediction_messages("p", rows, source_times(batch), "2024-01-01T00:00:00Z")]
    assert len(parsed) == 6
    assert all(p.status == "failed" and p.model_version == 3 and p.model_id == 30 and p.prediction is None
               for p in parsed)
