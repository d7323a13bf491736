"""What a scored batch becomes: prediction rows and events, alerts, sensor state.

Rows are tuples in the column order of services.consumer.store; events are
dicts encoded with orjson, shaped like shared.events.Prediction and Alert
(unit tests validate them into those models).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from services.consumer.decode import StreamBatch
from services.consumer.scoring import TaskScores
from shared.events import SCHEMA_VERSION
from shared.kafka.messages import Outgoing
from shared.streams import FieldType, StreamSpec, TaskKind

# Columns of the sensor_state table filled from features of the same name.
SENSOR_STATE_FEATURES = ("pressure_mca", "media_hora", "media_30d", "std_30d")


def _floats(values: np.ndarray | None, n: int) -> list[float | None]:
    if values is None:
        return [None] * n
    return [None if math.isnan(v) else v for v in values.tolist()]


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def source_times(batch: StreamBatch) -> list[Any]:
    """When each event's raw record was produced (the features event's time if unknown)."""
    return [event.get("raw_produced_at") or event.get("produced_at") for event in batch.events]


def parse_times(times: list[Any]) -> list[datetime | None]:
    return [parse_time(value) for value in times]


def reading_field(stream: StreamSpec) -> str | None:
    """The context field holding when a reading was taken, if the stream has one."""
    for name in stream.context_fields:
        if stream.field(name).type is FieldType.DATETIME:
            return name
    return None


def prediction_rows(batch: StreamBatch, result: TaskScores, produced: list[datetime | None]) -> list[tuple[Any, ...]]:
    """(event_id, stream, task, model_version, model_id, key, status,
    prediction, score, actual, error, produced_at) per event; ``produced``
    is :func:`parse_times` of the batch (parsed once for all its tasks)."""
    n = len(batch)
    stream, task = batch.stream.name, result.task.name
    predictions = _floats(result.prediction, n)
    scores = _floats(result.score, n)
    actuals = _floats(result.actual, n)
    errors = _floats(result.error, n)
    return [
        (
            event["event_id"],
            stream,
            task,
            result.model_version,
            result.model_id,
            str(event.get("key", "")),
            result.status,
            predictions[i],
            scores[i],
            actuals[i],
            errors[i],
            produced[i],
        )
        for i, event in enumerate(batch.events)
    ]


def prediction_messages(topic: str, rows: list[tuple[Any, ...]], times: list[Any], produced_at: str) -> list[Outgoing]:
    dumps = orjson.dumps
    messages = []
    for row, source_time in zip(rows, times, strict=True):
        event_id, stream, task, version, model_id, key, status, prediction, score, actual, error, _ = row
        payload = {
            "event_id": event_id,
            "stream": stream,
            "produced_at": produced_at,
            "schema_version": SCHEMA_VERSION,
            "task": task,
            "key": key,
            "status": status,
            "model_id": model_id,
            "model_version": version,
            "prediction": prediction,
            "score": score,
            "actual": actual,
            "error": error,
            "source_produced_at": source_time,
        }
        messages.append(Outgoing(topic=topic, value=dumps(payload), key=key.encode()))
    return messages


def alert_rows(batch: StreamBatch, result: TaskScores) -> list[tuple[Any, ...]]:
    """Abnormal readings of a classification task: (event_id, stream,
    sensor_id, neighbourhood, latitude, longitude, value, score,
    model_version, reading_at). The value is the task's first feature (the
    raw reading)."""
    if result.task.kind is not TaskKind.CLASSIFICATION or result.prediction is None:
        return []
    stream = batch.stream
    when = reading_field(stream)
    value_feature = result.task.features[0]
    scores = result.score if result.score is not None else np.full(len(batch), np.nan)
    rows = []
    for i in np.flatnonzero(result.prediction == 1).tolist():
        event = batch.events[i]
        context = event.get("context") or {}
        rows.append(
            (
                event["event_id"],
                stream.name,
                str(context.get(stream.key_field) or event.get("key", "")),
                context.get("neighbourhood"),
                _number(context.get("latitude")),
                _number(context.get("longitude")),
                float(event["features"][value_feature]),
                float(scores[i]),
                result.model_version,
                parse_time(context.get(when)) if when else None,
            )
        )
    return rows


def alert_messages(topic: str, rows: list[tuple[Any, ...]], produced_at: str) -> list[Outgoing]:
    messages = []
    for event_id, stream, sensor_id, neighbourhood, latitude, longitude, value, score, version, reading_at in rows:
        payload = {
            # Derived events keep their source's id (as in the alerts table),
            # so a redelivered reading maps onto the same alert.
            "event_id": event_id,
            "stream": stream,
            "produced_at": produced_at,
            "schema_version": SCHEMA_VERSION,
            "sensor_id": sensor_id,
            "neighbourhood": neighbourhood,
            "latitude": latitude,
            "longitude": longitude,
            "value": value,
            "score": score,
            "model_version": version,
            "reading_at": reading_at,
        }
        messages.append(Outgoing(topic=topic, value=orjson.dumps(payload), key=sensor_id.encode()))
    return messages


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def sensor_state_rows(batch: StreamBatch, classification: TaskScores | None) -> list[tuple[Any, ...]]:
    """The newest reading per sensor in the batch, for the sensor_state upsert:
    (sensor_id, neighbourhood, latitude, longitude, sensor_type,
    *SENSOR_STATE_FEATURES, last_score, alert, reading_at), sorted by sensor
    so concurrent writers lock rows in one order."""
    stream = batch.stream
    when = reading_field(stream)
    latest: dict[str, tuple[datetime | None, int]] = {}
    for i, event in enumerate(batch.events):
        context = event.get("context") or {}
        sensor = str(context.get(stream.key_field) or event.get("key", ""))
        reading_at = parse_time(context.get(when)) if when else None
        seen = latest.get(sensor)
        if seen is None or seen[0] is None or (reading_at is not None and reading_at >= seen[0]):
            latest[sensor] = (reading_at, i)
    rows = []
    for sensor in sorted(latest):
        reading_at, i = latest[sensor]
        event = batch.events[i]
        context = event.get("context") or {}
        features = event["features"]
        scored = classification is not None and classification.prediction is not None
        rows.append(
            (
                sensor,
                context.get("neighbourhood"),
                _number(context.get("latitude")),
                _number(context.get("longitude")),
                context.get("sensor_type"),
                *(_number(features.get(name)) for name in SENSOR_STATE_FEATURES),
                float(classification.score[i]) if scored and classification.score is not None else None,
                bool(classification.prediction[i] == 1) if scored else False,
                reading_at,
            )
        )
    return rows


def classification_result(results: list[TaskScores]) -> TaskScores | None:
    return next((r for r in results if r.task.kind is TaskKind.CLASSIFICATION), None)


def has_sensor_state(stream: StreamSpec) -> bool:
    """Streams of sensors: those whose features fill the sensor_state table."""
    return all(name in stream.features for name in SENSOR_STATE_FEATURES)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
