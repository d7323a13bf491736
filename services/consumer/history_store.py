"""The hourly history in PostgreSQL: written with the scored batch, expired
by retention.

Idempotence: every reading is inserted into ``entity_readings`` (keyed by
stream, event id and hour) with ON CONFLICT DO NOTHING, and only the
readings that insert really added (its RETURNING) are summed into their
hours of ``entity_history``, in the same transaction as the batch's
predictions. A redelivered batch (the consumer died before committing its
offsets) inserts no reading, so it adds nothing to any hour: sums, counts
and alert counts stay exact without re-reading an hour. The sums are made
here (services.consumer.history.hour_totals) and upserted once per entity
and hour, so PostgreSQL sorts and aggregates nothing.

Both tables are partitioned by month; a batch makes sure its months'
partitions exist first (a function of migration 0003, serialised per
partition), and retention drops whole partitions instead of deleting rows.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog

from services.consumer import metrics
from services.consumer.history import HOUR_COLUMNS, READING_COLUMNS, hour_totals, retention_horizon
from shared.months import month_start, next_month

log = structlog.get_logger(__name__)

# What entity_readings keeps of a reading (the first columns of a history row).
_STORED = READING_COLUMNS[:8]
_READINGS_STAGE = "history_readings_stage"
_HOURS_STAGE = "history_hours_stage"
_CREATE_STAGES = f"""
CREATE TEMP TABLE IF NOT EXISTS {_READINGS_STAGE} (
    stream text, key text, hour timestamptz, event_id text, reading_at timestamptz,
    value double precision, deviation double precision, alert boolean
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS {_HOURS_STAGE} (
    stream text, key text, hour timestamptz, readings integer, value_count integer, value_sum double precision,
    anomalies integer, last_reading_at timestamptz, deviation double precision, kind text, area text,
    latitude double precision, longitude double precision
) ON COMMIT DELETE ROWS"""
_INSERT_READINGS = (
    f"INSERT INTO entity_readings ({', '.join(_STORED)}) SELECT {', '.join(_STORED)} FROM {_READINGS_STAGE} "
    "ON CONFLICT DO NOTHING RETURNING stream, event_id"
)
# An hour's latest-reading columns take the newer of the stored and the batch's.
_LATEST = ("deviation", "kind", "area", "latitude", "longitude")
_UPSERT_HOURS = f"""
INSERT INTO entity_history AS h ({', '.join(HOUR_COLUMNS)})
SELECT {', '.join(HOUR_COLUMNS)} FROM {_HOURS_STAGE}
ORDER BY stream, key, hour  -- one lock order for every writer
ON CONFLICT (stream, key, hour) DO UPDATE SET
    readings = h.readings + EXCLUDED.readings,
    value_count = h.value_count + EXCLUDED.value_count,
    value_sum = h.value_sum + EXCLUDED.value_sum,
    anomalies = h.anomalies + EXCLUDED.anomalies,
    {', '.join(f"{c} = CASE WHEN EXCLUDED.last_reading_at >= h.last_reading_at THEN EXCLUDED.{c} ELSE h.{c} END"
               for c in _LATEST)},
    last_reading_at = greatest(h.last_reading_at, EXCLUDED.last_reading_at),
    updated_at = now()"""


async def ensure_months(connection: asyncpg.Connection | asyncpg.Pool, months: list[datetime]) -> int:
    """Create the month partitions of ``months`` that are missing; returns how many were made."""
    return int(await connection.fetchval("SELECT fluxo_history_ensure_months($1::timestamptz[])", months))


async def write_history(connection: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Add ``rows`` (services.consumer.history.history_rows) to the history,
    inside the caller's transaction."""
    if not rows:
        return
    # A batch may carry one event twice (an upstream redelivery): it counts once.
    unique = list({(row[0], row[3]): row for row in rows}.values())
    await ensure_months(connection, sorted({month_start(row[2]) for row in unique}))
    await connection.execute(_CREATE_STAGES)
    await connection.copy_records_to_table(_READINGS_STAGE, records=[row[:8] for row in unique], columns=_STORED)
    added = {(record["stream"], record["event_id"]) for record in await connection.fetch(_INSERT_READINGS)}
    hours = hour_totals([row for row in unique if (row[0], row[3]) in added])
    if hours:
        await connection.copy_records_to_table(_HOURS_STAGE, records=hours, columns=HOUR_COLUMNS)
        await connection.execute(_UPSERT_HOURS)


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
