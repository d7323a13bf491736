"""The hourly history of entity streams: which readings of a scored batch go
into it, and which months retention has expired.

A stream keeps a history when its declaration says so (``entity.history``:
the value whose hourly mean is kept and the deviation column). Each reading
is placed in the UTC hour of its reading time (the stream's datetime context
field, else when the raw event was produced). Rows are tuples in the column
order of services.consumer.history_store.READING_COLUMNS.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.consumer.decode import StreamBatch
from services.consumer.outputs import _place, parse_time, reading_field
from services.consumer.scoring import TaskScores
from shared.months import hour_of, months_before, next_month


def retention_horizon(now: datetime, months: int) -> datetime:
    """Readings before this instant are past retention; a month partition
    that ends at or before it is dropped."""
    return months_before(now.astimezone(UTC), months)


def expired(hour: datetime, horizon: datetime) -> bool:
    """Whether the month partition holding ``hour`` is past retention (its
    rows would land in a partition retention drops, or already dropped)."""
    return next_month(hour) <= horizon


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def history_rows(batch: StreamBatch, alerting: TaskScores | None, horizon: datetime) -> list[tuple[Any, ...]]:
    """One row per reading of a stream that keeps a history: (stream, key,
    hour, event_id, reading_at, value, deviation, alert, kind, area,
    latitude, longitude). Readings without a time, or past retention, are
    left out."""
    stream = batch.stream
    entity = stream.entity
    if entity is None or entity.history is None:
        return []
    history = entity.history
    when = reading_field(stream)
    alerted: set[int] = set()
    if alerting is not None and alerting.prediction is not None and alerting.positive is not None:
        positive = (alerting.prediction == alerting.positive).tolist()
        alerted = {i for i, hit in zip(alerting.rows.tolist(), positive, strict=True) if hit}
    rows = []
    for i, event in enumerate(batch.events):
        context = event.get("context") or {}
        reading_at = parse_time(context.get(when)) if when else None
        reading_at = reading_at or parse_time(event.get("raw_produced_at") or event.get("produced_at"))
        if reading_at is None:
            continue
        hour = hour_of(reading_at)
        if expired(hour, horizon):
            continue
        features = event.get("features") or {}
        area, latitude, longitude, kind = _place(stream, event)
        rows.append(
            (
                stream.name,
                str(event.get("key", "")),
                hour,
                event["event_id"],
                reading_at,
                _number(features.get(history.value)),
                _number(features.get(history.deviation)) if history.deviation else None,
                i in alerted,
                None if kind is None else str(kind),
                None if area is None else str(area),
                latitude,
                longitude,
            )
        )
    return rows
