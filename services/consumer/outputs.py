"""What a scored batch becomes: prediction rows and events, alerts, entity state.

Rows are tuples in the column order of services.consumer.store; events are
dicts encoded with orjson, shaped like shared.events.Prediction and Alert
(unit tests validate them into those models). Which columns are a thing's
place, area and state comes from the stream's declaration (``entity``).
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
from shared.streams import FieldType, StreamSpec


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
    for name in stream.context:
        if stream.field(name).type is FieldType.DATETIME:
            return name
    return None


def prediction_rows(batch: StreamBatch, result: TaskScores, produced: list[datetime | None],
                    role: str = "champion") -> list[tuple[Any, ...]]:
    """(event_id, stream, task, model_version, model_id, key, status,
    prediction, score, actual, error, produced_at, label, actual_label,
    percent_error, role) per event the result covers; ``produced`` is
    :func:`parse_times` of the batch; ``role`` says whether the champion or
    the shadow made them."""
    rows = result.rows.tolist()
    n = len(rows)
    stream, task = batch.stream.name, result.task.name
    predictions = _floats(result.prediction, n)
    scores = _floats(result.score, n)
    actuals = _floats(result.actual, n)
    errors = _floats(result.error, n)
    percents = _floats(result.percent_error, n)
    labels = result.labels or [None] * n
    actual_labels = result.actual_labels or [None] * n
    out = []
    for j, i in enumerate(rows):
        event = batch.events[i]
        out.append(
            (
                event["event_id"],
                stream,
                task,
                result.model_version,
                result.model_id,
                str(event.get("key", "")),
                result.status,
                predictions[j],
                scores[j],
                actuals[j],
                errors[j],
                produced[i],
                labels[j],
                actual_labels[j],
                percents[j],
                role,
            )
        )
    return out


def prediction_messages(topic: str, rows: list[tuple[Any, ...]], times: list[Any], produced_at: str) -> list[Outgoing]:
    dumps = orjson.dumps
    messages = []
    for row, source_time in zip(rows, times, strict=True):
        (event_id, stream, task, version, model_id, key, status, prediction, score, actual, error, _,
         label, actual_label, percent_error, _role) = row
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
            "label": label,
            "score": score,
            "actual": actual,
            "actual_label": actual_label,
            "error": error,
            "percent_error": percent_error,
            "source_produced_at": source_time,
        }
        messages.append(Outgoing(topic=topic, value=dumps(payload), key=key.encode()))
    return messages


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _place(stream: StreamSpec, event: dict[str, Any]) -> tuple[Any, float | None, float | None, Any]:
    """(area, latitude, longitude, kind) of the entity an event is about."""
    entity = stream.entity
    if entity is None:
        return None, None, None, None
    context = event.get("context") or {}
    features = event.get("features") or {}
    return (
        context.get(entity.area) if entity.area else None,
        _number(features.get(entity.latitude)) if entity.latitude else None,
        _number(features.get(entity.longitude)) if entity.longitude else None,
        context.get(entity.kind) if entity.kind else None,
    )


def alert_rows(batch: StreamBatch, result: TaskScores) -> list[tuple[Any, ...]]:
    """Positive predictions of an alerting task: (event_id, stream, task, key,
    area, latitude, longitude, value, score, model_version, reading_at). The
    value is the task's first feature (the raw reading)."""
    if not result.task.alert or result.prediction is None or result.positive is None:
        return []
    stream = batch.stream
    when = reading_field(stream)
    value_feature = result.task.features[0]
    scores = result.score if result.score is not None else np.full(len(result.rows), np.nan)
    rows = []
    for j in np.flatnonzero(result.prediction == result.positive).tolist():
        event = batch.events[int(result.rows[j])]
        area, latitude, longitude, _ = _place(stream, event)
        rows.append(
            (
                event["event_id"],
                stream.name,
                result.task.name,
                str(event.get("key", "")),
                area,
                latitude,
                longitude,
                _number((event.get("features") or {}).get(value_feature)),
                float(scores[j]),
                result.model_version,
                parse_time((event.get("context") or {}).get(when)) if when else None,
            )
        )
    return rows


def alert_messages(topic: str, rows: list[tuple[Any, ...]], produced_at: str) -> list[Outgoing]:
    messages = []
    for event_id, stream, task, key, area, latitude, longitude, value, score, version, reading_at in rows:
        payload = {
            # Derived events keep their source's id (as in the alerts table),
            # so a redelivered reading maps onto the same alert.
            "event_id": event_id,
            "stream": stream,
            "produced_at": produced_at,
            "schema_version": SCHEMA_VERSION,
            "task": task,
            "key": key,
            "area": area,
            "latitude": latitude,
            "longitude": longitude,
            "value": value,
            "score": score,
            "model_version": version,
            "reading_at": reading_at,
        }
        messages.append(Outgoing(topic=topic, value=orjson.dumps(payload), key=key.encode()))
    return messages


def entity_state_rows(batch: StreamBatch, alerting: TaskScores | None) -> list[tuple[Any, ...]]:
    """The newest reading per entity in the batch, for the entity_state upsert:
    (stream, key, area, latitude, longitude, kind, state, last_score, alert,
    reading_at), sorted by key so concurrent writers lock rows in one order."""
    stream = batch.stream
    entity = stream.entity
    if entity is None:
        return []
    when = reading_field(stream)
    latest: dict[str, tuple[datetime | None, int]] = {}
    for i, event in enumerate(batch.events):
        key = str(event.get("key", ""))
        reading_at = parse_time((event.get("context") or {}).get(when)) if when else None
        seen = latest.get(key)
        if seen is None or seen[0] is None or (reading_at is not None and reading_at >= seen[0]):
            latest[key] = (reading_at, i)
    scored: dict[int, int] = {}
    if alerting is not None and alerting.prediction is not None:
        scored = {int(i): j for j, i in enumerate(alerting.rows.tolist())}
    rows = []
    for key in sorted(latest):
        reading_at, i = latest[key]
        event = batch.events[i]
        features = event.get("features") or {}
        area, latitude, longitude, kind = _place(stream, event)
        j = scored.get(i)
        last_score = None
        alert = False
        if j is not None:
            assert alerting is not None and alerting.prediction is not None
            last_score = float(alerting.score[j]) if alerting.score is not None else None
            alert = bool(alerting.prediction[j] == alerting.positive)
        state = {name: _number(features.get(name)) for name in entity.values}
        rows.append((stream.name, key, area, latitude, longitude, kind, state, last_score, alert, reading_at))
    return rows


def alerting_result(results: list[TaskScores]) -> TaskScores | None:
    return next((r for r in results if r.task.alert), None)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
