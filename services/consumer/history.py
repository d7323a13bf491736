"""The hourly history of entity streams: which readings of a scored batch go
into it, and which months retention has expired.

A stream keeps a history when its declaration says so (``entity.history``:
the value whose hourly mean is kept and the deviation column). Each reading
is placed in the UTC hour of its reading time (the stream's datetime context
field, else when the raw event was produced). Rows are tuples in the column
order of READING_COLUMNS; :func:`hour_totals` sums readings into hours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.consumer.decode import StreamBatch
from services.consumer.outputs import _place, parse_time, reading_field
from services.consumer.scoring import TaskScores
from shared.months import months_before, next_month


READING_COLUMNS = (
    "stream", "key", "hour", "event_id", "reading_at", "value", "deviation", "alert",
    "kind", "area", "latitude", "longitude",
)
HOUR_COLUMNS = (
    "stream", "key", "hour", "readings", "value_count", "value_sum", "anomalies", "last_reading_at",
    "deviation", "kind", "area", "latitude", "longitude",
)


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
    # Hours by their epoch number: a batch holds few, and building a
    # datetime (and checking retention) once per hour keeps this cheap.
    hours: dict[int, datetime | None] = {}
    rows = []
    for i, event in enumerate(batch.events):
        context = event.get("context") or {}
        reading_at = parse_time(context.get(when)) if when else None
        reading_at = reading_at or parse_time(event.get("raw_produced_at") or event.get("produced_at"))
        if reading_at is None:
            continue
        slot = int(reading_at.timestamp() // 3600)
        if slot not in hours:
            start = datetime.fromtimestamp(slot * 3600, UTC)
            hours[slot] = None if expired(start, horizon) else start
        hour = hours[slot]
        if hour is None:
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


def hour_totals(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Readings (history rows) summed per stream, entity and hour, in the
    column order of HOUR_COLUMNS: readings, values counted and summed,
    alerts, the latest reading's time, and its deviation, kind and place."""
    totals: dict[tuple[str, str, datetime], list[Any]] = {}
    latest: dict[tuple[str, str, datetime], tuple[Any, ...]] = {}
    for row in rows:
        stream, key, hour, event_id, reading_at, value, _, alert = row[:8]
        slot = (stream, key, hour)
        total = totals.get(slot)
        if total is None:
            total = totals[slot] = [0, 0, 0.0, 0]
        total[0] += 1
        if value is not None:
            total[1] += 1
            total[2] += value
        total[3] += bool(alert)
        newest = latest.get(slot)
        if newest is None or (reading_at, event_id) > (newest[4], newest[3]):
            latest[slot] = row
    out = []
    for slot in sorted(totals):
        readings, count, total, alerts = totals[slot]
        newest = latest[slot]
        out.append((*slot, readings, count, total, alerts, newest[4], newest[6], *newest[8:12]))
    return out
