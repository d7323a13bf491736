"""The hourly history in PostgreSQL: written with the scored batch, expired
by retention.

Idempotence: every reading is inserted into ``entity_readings`` (keyed by
stream, event id and hour) with ON CONFLICT DO NOTHING, and only the rows
that insert really added are summed into ``entity_history``, in the same
statement and the same transaction as the batch's predictions. A
redelivered batch (the consumer died before committing its offsets)
inserts no reading, so it adds nothing to any hour: sums, counts and alert
counts stay exact without re-reading the hour. The latest deviation, kind
and place of an hour are those of its latest reading.

Both tables are partitioned by month; a batch makes sure its months'
partitions exist first (a function in migration 0003, serialised per
partition), and retention drops whole partitions instead of deleting rows.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog

from services.consumer import metrics
from services.consumer.history import retention_horizon
from shared.months import month_start, next_month

log = structlog.get_logger(__name__)

READING_COLUMNS = (
    "stream", "key", "hour", "event_id", "reading_at", "value", "deviation", "alert",
    "kind", "area", "latitude", "longitude",
)

_STAGE = "history_stage"
_CREATE_STAGE = f"""CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (
    stream text, key text, hour timestamptz, event_id text, reading_at timestamptz,
    value double precision, deviation double precision, alert boolean,
    kind text, area text, latitude double precision, longitude double precision
) ON COMMIT DELETE ROWS"""

# The latest reading's value of a column within an hour of the batch.
_LATEST = "(array_agg({0} ORDER BY reading_at DESC, event_id DESC))[1] AS {0}"
# An hour's column takes the newer of the stored and the batch's latest reading.
_NEWER = "{0} = CASE WHEN EXCLUDED.last_reading_at >= h.last_reading_at THEN EXCLUDED.{0} ELSE h.{0} END"
_PLACE = ("deviation", "kind", "area", "latitude", "longitude")

_UPSERT = f"""
WITH added AS (
    INSERT INTO entity_readings (stream, key, hour, event_id, reading_at, value, deviation, alert)
    SELECT stream, key, hour, event_id, reading_at, value, deviation, alert FROM {_STAGE}
    ON CONFLICT DO NOTHING
    RETURNING stream, event_id
), fresh AS (
    -- A batch may carry the same event twice: it counts once.
    SELECT DISTINCT ON (s.stream, s.event_id) s.*
    FROM {_STAGE} s JOIN added a ON a.stream = s.stream AND a.event_id = s.event_id
), hours AS (
    SELECT stream, key, hour,
           count(*) AS readings,
           count(value) AS value_count,
           coalesce(sum(value), 0) AS value_sum,
           count(*) FILTER (WHERE alert) AS anomalies,
           max(reading_at) AS last_reading_at,
           {", ".join(_LATEST.format(column) for column in _PLACE)}
    FROM fresh GROUP BY stream, key, hour
)
INSERT INTO entity_history AS h (stream, key, hour, readings, value_count, value_sum, anomalies, last_reading_at,
                                 {", ".join(_PLACE)})
SELECT stream, key, hour, readings, value_count, value_sum, anomalies, last_reading_at, {", ".join(_PLACE)}
FROM hours
-- One lock order for every writer.
ORDER BY stream, key, hour
ON CONFLICT (stream, key, hour) DO UPDATE SET
    readings = h.readings + EXCLUDED.readings,
    value_count = h.value_count + EXCLUDED.value_count,
    value_sum = h.value_sum + EXCLUDED.value_sum,
    anomalies = h.anomalies + EXCLUDED.anomalies,
    {", ".join(_NEWER.format(column) for column in _PLACE)},
    last_reading_at = greatest(h.last_reading_at, EXCLUDED.last_reading_at),
    updated_at = now()
"""


async def ensure_months(connection: asyncpg.Connection | asyncpg.Pool, months: list[datetime]) -> int:
    """Create the month partitions of ``months`` that are missing; returns how many were made."""
    return int(await connection.fetchval("SELECT fluxo_history_ensure_months($1::timestamptz[])", months))


async def write_history(connection: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Add ``rows`` (services.consumer.history.history_rows) to the history,
    inside the caller's transaction."""
    if not rows:
        return
    await ensure_months(connection, sorted({month_start(row[2]) for row in rows}))
    await connection.execute(_CREATE_STAGE)
    await connection.copy_records_to_table(_STAGE, records=rows, columns=READING_COLUMNS)
    await connection.execute(_UPSERT)


async def enforce_retention(pool: asyncpg.Pool, months: int, now: datetime | None = None,
                            timeout: float = 60.0) -> list[str]:
    """Drop the partitions past ``months`` of retention and make sure this
    month's and the next one's exist; returns the partitions dropped."""
    now = now or datetime.now(UTC)
    horizon = retention_horizon(now, months)
    async with pool.acquire() as connection, connection.transaction():
        rows = await connection.fetch("SELECT fluxo_history_drop_before($1) AS name", horizon, timeout=timeout)
        await ensure_months(connection, [month_start(now), next_month(now)])
    dropped = [row["name"] for row in rows]
    if dropped:
        metrics.HISTORY_PARTITIONS_DROPPED.inc(len(dropped))
        log.info("history_partitions_dropped", partitions=dropped, horizon=horizon.isoformat(), months=months)
    return dropped


async def keep_retention(pool: asyncpg.Pool, months: int, interval: float, stop: asyncio.Event,
                         transient: tuple[type[BaseException], ...]) -> None:
    """Enforce retention now and every ``interval`` seconds until ``stop``;
    an unreachable database is logged and tried again at the next tick."""
    while not stop.is_set():
        try:
            await enforce_retention(pool, months)
        except transient as error:
            log.warning("history_retention_failed", error=f"{type(error).__name__}: {error}")
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass
