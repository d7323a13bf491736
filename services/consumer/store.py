"""A scored batch into PostgreSQL, in one transaction.

Predictions go through COPY into a temporary staging table and one
INSERT ... ON CONFLICT DO NOTHING, so a redelivered batch (the consumer died
before committing its offsets) adds nothing. Alerts are keyed by event id
the same way; entity_state keeps the newest reading per entity, and the
hourly history its readings (services.consumer.history_store).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from services.consumer.history_store import write_history

PREDICTION_COLUMNS = (
    "event_id", "stream", "task", "model_version", "model_id", "key", "status",
    "prediction", "score", "actual", "error", "produced_at", "label", "actual_label", "percent_error", "role",
)
ALERT_COLUMNS = (
    "event_id", "stream", "task", "key", "area", "latitude", "longitude",
    "value", "score", "model_version", "reading_at",
)
ENTITY_COLUMNS = (
    "stream", "key", "area", "latitude", "longitude", "kind", "state", "last_score", "alert", "reading_at",
)

_STAGE = "predictions_stage"
_CREATE_STAGE = f"""CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (
    event_id text, stream text, task text, model_version integer, model_id bigint, key text,
    status text, prediction double precision, score double precision, actual double precision,
    error double precision, produced_at timestamptz, label text, actual_label text, percent_error double precision,
    role text
) ON COMMIT DELETE ROWS"""
_COLUMNS = ", ".join(PREDICTION_COLUMNS)
_INSERT_PREDICTIONS = (
    f"INSERT INTO predictions ({_COLUMNS}) SELECT {_COLUMNS} FROM {_STAGE} ON CONFLICT DO NOTHING"
)
_INSERT_ALERT = (
    f"INSERT INTO alerts ({', '.join(ALERT_COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(ALERT_COLUMNS) + 1))}) ON CONFLICT (event_id) DO NOTHING"
)
_UPSERT_ENTITY = (
    f"INSERT INTO entity_state ({', '.join(ENTITY_COLUMNS)}, updated_at) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(ENTITY_COLUMNS) + 1))}, now()) "
    "ON CONFLICT (stream, key) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in ENTITY_COLUMNS[2:])
    + ", updated_at = now() "
    # A redelivered older reading must not overwrite a newer one.
    "WHERE entity_state.reading_at IS NULL OR EXCLUDED.reading_at IS NULL "
    "OR EXCLUDED.reading_at >= entity_state.reading_at"
)


async def write_batch(
    pool: asyncpg.Pool,
    predictions: list[tuple[Any, ...]],
    alerts: list[tuple[Any, ...]] = (),  # type: ignore[assignment]
    entities: list[tuple[Any, ...]] = (),  # type: ignore[assignment]
    history: list[tuple[Any, ...]] = (),  # type: ignore[assignment]
    after: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> int:
    """Write everything or nothing (``after`` runs last, in the same
    transaction); returns the prediction rows inserted (fewer than given when
    some were already there)."""
    inserted = 0
    async with pool.acquire() as connection, connection.transaction():
        if predictions:
            await connection.execute(_CREATE_STAGE)
            await connection.copy_records_to_table(_STAGE, records=predictions, columns=PREDICTION_COLUMNS)
            status = await connection.execute(_INSERT_PREDICTIONS)
            inserted = int(status.rsplit(" ", 1)[-1])
        if alerts:
            await connection.executemany(_INSERT_ALERT, alerts)
        if entities:
            await connection.executemany(_UPSERT_ENTITY, entities)
        await write_history(connection, history)
        if after is not None:
            await after(connection)
    return inserted
