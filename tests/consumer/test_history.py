"""The hourly history of entity streams: readings placed in their hours, a
redelivered batch adding nothing, means that are the readings' arithmetic,
and retention dropping month partitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from aiokafka.structs import ConsumerRecord

from services.consumer.decode import decode_batch
from services.consumer.history import READING_COLUMNS, expired, history_rows, retention_horizon
from services.consumer.history_store import enforce_retention
from services.consumer.store import write_batch
from shared.months import months_before
from tests.history_data import CATALOG, TOPICS, alerting, batch_of, readings
from tests.live import Database
from tests.ml.synthetic import features_events
from tests.streams import ENERGY, PRESSURE

START = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 20, tzinfo=UTC)
FAR = datetime(2020, 1, 1, tzinfo=UTC)  # a horizon nothing is past


def test_readings_go_to_their_utc_hour_with_the_alert_state() -> None:
    local = datetime(2026, 3, 10, 9, 59, 59, tzinfo=UTC).astimezone(ZoneInfo("America/Recife"))
    events = readings([START + timedelta(minutes=5), local, START + timedelta(hours=2)], [30.0, 31.0, 32.0],
                      ["s-1", "s-1", "s-2"], [1.0, 1.5, 2.0])
    rows = history_rows(batch_of(events), alerting([0, 2], [True, False]), FAR)
    assert len(rows[0]) == len(READING_COLUMNS)
    by_column = [dict(zip(READING_COLUMNS, row, strict=True)) for row in rows]
    assert [r["hour"] for r in by_column] == [START, START + timedelta(hours=1), START + timedelta(hours=2)]
    assert [r["alert"] for r in by_column] == [True, False, False]  # the second was not scored
    assert [r["value"] for r in by_column] == [30.0, 31.0, 32.0]
    assert [r["deviation"] for r in by_column] == [1.0, 1.5, 2.0]
    assert [r["event_id"] for r in by_column] == [e.event_id for e in events]
    assert all(r["area"] and r["kind"] and r["latitude"] is not None for r in by_column)


def test_streams_without_a_history_and_readings_past_retention_are_left_out() -> None:
    energy = features_events(ENERGY, 3)
    values = [e.to_bytes() for e in energy]
    records = [ConsumerRecord(TOPICS.features("energy"), 0, i, 0, 0, b"k", v, None, 1, len(v), ())
               for i, v in enumerate(values)]
    batches, _ = decode_batch(TOPICS, CATALOG, records)
    assert history_rows(batches["energy"], None, FAR) == []

    old = datetime(2025, 1, 31, 23, tzinfo=UTC)
    events = readings([old, old + timedelta(hours=1)], [1.0, 2.0], ["a", "a"])
    horizon = datetime(2025, 2, 1, tzinfo=UTC)  # January has expired, February not
    rows = history_rows(batch_of(events), None, horizon)
    assert [row[2] for row in rows] == [datetime(2025, 2, 1, 0, tzinfo=UTC)]


def test_retention_arithmetic_follows_calendar_months() -> None:
    assert months_before(datetime(2026, 3, 31, 12, tzinfo=UTC), 1) == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert months_before(datetime(2026, 1, 15, tzinfo=UTC), 13) == datetime(2024, 12, 15, tzinfo=UTC)
    horizon = retention_horizon(datetime(2026, 3, 15, tzinfo=UTC), 2)  # 2026-01-15
    assert expired(datetime(2025, 12, 31, 23, tzinfo=UTC), horizon)
    assert not expired(datetime(2026, 1, 1, tzinfo=UTC), horizon)  # January still holds unexpired hours


async def _hours(database: Database) -> dict[tuple[str, datetime], dict]:
    rows = await database.pool.fetch(
        """SELECT key, hour, readings, value_count, value_sum / nullif(value_count, 0) AS mean, deviation,
                  anomalies, last_reading_at FROM entity_history WHERE stream = $1""", PRESSURE.name)
    return {(row["key"], row["hour"]): dict(row) for row in rows}


async def test_hours_are_the_readings_arithmetic_and_a_redelivery_adds_nothing(database: Database) -> None:
    rng = np.random.default_rng(3)
    # Distinct times: the latest reading of an hour is then one reading.
    times = [START + timedelta(seconds=int(s)) for s in rng.choice(3 * 3600, 60, replace=False)]
    values = rng.uniform(20, 60, 60).round(3).tolist()
    keys = [f"s-{i % 3}" for i in range(60)]
    deviations = rng.uniform(0, 3, 60).tolist()
    events = readings(times, values, keys, deviations)
    batch = batch_of(events)
    positive = (rng.random(60) < 0.2).tolist()
    rows = history_rows(batch, alerting(list(range(60)), positive), FAR)

    # Two batches, the second redelivered whole, then again with one event twice.
    await write_batch(database.pool, [], history=rows[:40])
    await write_batch(database.pool, [], history=rows[30:])
    await write_batch(database.pool, [], history=rows[30:] + rows[45:46])
    await write_batch(database.pool, [], history=rows)
    hours = await _hours(database)

    expected: dict[tuple[str, datetime], list[int]] = {}
    for i, (key, moment) in enumerate(zip(keys, times, strict=True)):
        expected.setdefault((key, moment.replace(minute=0, second=0)), []).append(i)
    assert set(hours) == set(expected)
    for slot, members in expected.items():
        hour = hours[slot]
        assert hour["readings"] == hour["value_count"] == len(members)
        assert hour["mean"] == pytest.approx(sum(values[i] for i in members) / len(members), rel=1e-12)
        assert hour["anomalies"] == sum(positive[i] for i in members)
        latest = max(members, key=lambda i: times[i])
        assert hour["deviation"] == deviations[latest]
        assert hour["last_reading_at"] == times[latest]
    assert await database.pool.fetchval("SELECT count(*) FROM entity_readings") == 60


async def test_retention_drops_whole_month_partitions(database: Database) -> None:
    old = NOW - timedelta(days=75)  # early January 2026
    events = readings([old, NOW - timedelta(hours=1)], [10.0, 20.0], ["s-1", "s-1"])
    await write_batch(database.pool, [], history=history_rows(batch_of(events), None, FAR))

    async def partitions() -> set[str]:
        rows = await database.pool.fetch(
            """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'entity_history'""")
        return {row["relname"] for row in rows}

    assert await partitions() == {"entity_history_p202601", "entity_history_p202603"}
    assert await enforce_retention(database.pool, 13, now=NOW) == []
    # Next month's partition is made ahead of time.
    assert await partitions() == {"entity_history_p202601", "entity_history_p202603", "entity_history_p202604"}

    dropped = await enforce_retention(database.pool, 1, now=NOW)
    assert sorted(dropped) == ["entity_history_p202601", "entity_readings_p202601"]
    assert await partitions() == {"entity_history_p202603", "entity_history_p202604"}
    assert [row["hour"] for row in await database.pool.fetch("SELECT hour FROM entity_history")] == [
        (NOW - timedelta(hours=1)).replace(minute=0)]
