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
    parse_times,
    prediction_messages,
    prediction_rows,
    sensor_state_rows,
    source_times,
)
from services.consumer.rolling import RollingErrors
from services.consumer.scoring import model_matrix, prediction_errors, required_features, score_batch
from services.consumer.store import ALERT_COLUMNS, PREDICTION_COLUMNS, SENSOR_COLUMNS
from shared.events import Alert, FeaturesEvent, Prediction
from shared.streams import TaskKind
from tests.streams import ENERGY, PEOPLE, PRESSURE
from shared.topics import Topics
from tests.ml.factory import serving_model
from tests.ml.synthetic import features_events

TOPICS = Topics("t-")


def _records(events: list[FeaturesEvent] | list[bytes], topic: str) -> list[ConsumerRecord]:
    values = [e if isinstance(e, bytes) else e.to_bytes() for e in events]
    return [ConsumerRecord(topic, 0, i, 0, 0, b"k", v, None, 1, len(v), ()) for i, v in enumerate(values)]


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
        good[1].to_bytes(),
    ]
    batches, rejected = decode_batch(TOPICS, _records(values, TOPICS.features("people")))
    assert len(batches["people"]) == 2
    reasons = [r.reason for r in rejected]
    assert reasons[0].startswith("not JSON")
    assert reasons[1] == "expected a JSON object, got list"
    assert reasons[2] == "features: missing or not an object"
    assert reasons[3].startswith("event_id: missing")


def test_hot_path_output_validates_into_the_event_models(energy_models) -> None:
    events = features_events(ENERGY, 20, seed=3)
    batches, rejected = decode_batch(TOPICS, _records(events, TOPICS.features("energy")))
    assert not rejected
    kept, results, reasons = score_batch(batches["energy"], energy_models)
    assert not reasons and len(kept) == 20
    times = source_times(kept)
    for result in results:
        rows = prediction_rows(kept, result, parse_times(times))
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
        else:
            assert all(p.actual is None and p.error is None for p in parsed)
            assert all(p.score is not None and p.score >= 0 for p in parsed)


def test_a_stream_without_a_model_is_unscored() -> None:
    events = features_events(PEOPLE, 5)
    batches, _ = decode_batch(TOPICS, _records(events, TOPICS.features("people")))
    kept, results, _ = score_batch(batches["people"], {})
    (result,) = results
    assert result.status == "unscored" and result.model_version == 0 and result.model_id is None
    rows = prediction_rows(kept, result, parse_times(source_times(kept)))
    parsed = [Prediction.model_validate_json(m.value) for m in prediction_messages("p", rows, source_times(kept), "2024-01-01T00:00:00Z")]
    assert all(p.status == "unscored" and p.prediction is None and p.model_version == 0 for p in parsed)
    # The actual is still recorded, the error is not (there is no prediction).
    assert all(p.actual is not None and p.error is None for p in parsed)


def test_rows_missing_a_required_feature_are_rejected_the_rest_scored(energy_models) -> None:
    events = [e.model_dump(mode="json") for e in features_events(ENERGY, 4)]
    required = required_features(ENERGY)
    del events[1]["features"][required[0]]
    events[2]["features"][required[-1]] = "n/a"
    batches, _ = decode_batch(TOPICS, _records([orjson.dumps(e) for e in events], TOPICS.features("energy")))
    kept, results, reasons = score_batch(batches["energy"], energy_models)
    assert reasons == {
        1: f"features.{required[0]}: missing or not a finite number",
        2: f"features.{required[-1]}: missing or not a finite number",
    }
    assert [e["event_id"] for e in kept.events] == [events[0]["event_id"], events[3]["event_id"]]
    assert all(len(r.prediction) == 2 and np.isfinite(r.prediction).all() for r in results)


def test_absent_optional_features_take_the_training_mean(energy_models) -> None:
    carbon = ENERGY.task("carbon")
    model = energy_models[("energy", "carbon")]
    optional = carbon.optional_features[0]
    columns = {name: np.array([10.0, 20.0]) for name in ENERGY.features}
    columns[optional] = np.array([np.nan, 30.0])
    matrix = model_matrix(model, carbon, columns)
    j = model.features.index(optional)
    assert matrix[0, j] == np.float32(model.meta.feature_means[optional])
    assert matrix[1, j] == 30.0


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


def test_pressure_alerts_and_sensor_state(pressure_model) -> None:
    events = features_events(PRESSURE, 300, seed=9)
    batches, _ = decode_batch(TOPICS, _records(events, TOPICS.features("pressure")))
    kept, (result,), _ = score_batch(batches["pressure"], {("pressure", "anomaly"): pressure_model})
    alerts = alert_rows(kept, result)
    flagged = int((result.prediction == 1).sum())
    assert flagged > 0 and len(alerts) == flagged
    assert all(len(row) == len(ALERT_COLUMNS) for row in alerts)
    parsed = [Alert.model_validate_json(m.value) for m in alert_messages(TOPICS.alerts, alerts, "2024-01-01T00:00:00Z")]
    by_id = {e.event_id: e for e in events}
    for alert in parsed:
        source = by_id[alert.event_id]
        assert alert.sensor_id == source.context["sensor_id"]
        assert alert.value == source.features[PRESSURE.task("anomaly").features[0]]
        assert alert.latitude == source.context["latitude"] and 0.5 <= alert.score <= 1
        assert alert.model_version == 5
    sensors = sensor_state_rows(kept, result)
    assert all(len(row) == len(SENSOR_COLUMNS) for row in sensors)
    names = [row[0] for row in sensors]
    assert names == sorted(set(e.context["sensor_id"] for e in events))
    # Each sensor's row is its newest reading.
    column = SENSOR_COLUMNS.index
    for row in sensors:
        newest = max((e for e in events if e.context["sensor_id"] == row[0]), key=lambda e: e.context["timestamp"])
        assert row[column("reading_at")].isoformat() == newest.context["timestamp"]
        assert row[column("media_hora")] == newest.features["media_hora"]
        i = next(i for i, e in enumerate(kept.events) if e["event_id"] == newest.event_id)
        assert row[column("alert")] == bool(result.prediction[i] == 1)
        assert math.isclose(row[column("last_score")], result.score[i])


def test_sensor_state_without_a_model_has_no_alert() -> None:
    events = features_events(PRESSURE, 10)
    batches, _ = decode_batch(TOPICS, _records(events, TOPICS.features("pressure")))
    kept, (result,), _ = score_batch(batches["pressure"], {})
    assert alert_rows(kept, result) == []
    rows = sensor_state_rows(kept, result)
    assert rows and all(row[SENSOR_COLUMNS.index("alert")] is False for row in rows)


def test_a_model_that_fails_to_score_leaves_the_batch_unscored(energy_models) -> None:
    class Broken(type(energy_models[("energy", "carbon")])):
        def score(self, matrix):  # type: ignore[override]
            raise RuntimeError("onnxruntime exploded")

    broken = copy.copy(energy_models[("energy", "carbon")])
    broken.__class__ = Broken
    events = features_events(ENERGY, 5)
    batches, _ = decode_batch(TOPICS, _records(events, TOPICS.features("energy")))
    kept, results, reasons = score_batch(batches["energy"], {**energy_models, ("energy", "carbon"): broken})
    by_task = {r.task.name: r for r in results}
    assert not reasons and len(kept) == 5
    assert by_task["carbon"].status == "unscored" and by_task["carbon"].model_version == 0
    assert by_task["cluster"].status == "scored"
