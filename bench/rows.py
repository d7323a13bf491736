"""What the consumer wrote to PostgreSQL, read back for the figures."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import numpy as np


async def prediction_rows(connection: asyncpg.Connection) -> int:
    return int(await connection.fetchval("SELECT count(*) FROM predictions"))


async def scored_points(connection: asyncpg.Connection) -> list[tuple[float, int]]:
    """(scored_at as epoch seconds, events) per write transaction.

    scored_at defaults to now(), the start of the consumer's write
    transaction, so every row of one batch shares it; an event's rows for
    several tasks are written in the same batch.
    """
    rows = await connection.fetch(
        """SELECT extract(epoch FROM scored_at)::float8 AS at, count(DISTINCT event_id) AS events
           FROM predictions GROUP BY scored_at"""
    )
    return [(row["at"], int(row["events"])) for row in rows]


async def unscored_rows(connection: asyncpg.Connection) -> int:
    return int(await connection.fetchval("SELECT count(*) FROM predictions WHERE status <> 'scored'"))


async def latencies_ms(connection: asyncpg.Connection, since: datetime) -> np.ndarray:
    """Per event produced at or after ``since``: its raw event's produced_at
    (the consumer stores it on the row) to the write of its rows."""
    rows = await connection.fetch(
        """SELECT extract(epoch FROM (max(scored_at) - min(produced_at))) * 1000 AS ms
           FROM predictions WHERE produced_at >= $1 GROUP BY event_id""",
        since,
    )
    return np.array([row["ms"] for row in rows], dtype=np.float64)


async def produced_span(connection: asyncpg.Connection, since: datetime) -> tuple[int, float]:
    """Events produced since ``since`` and the seconds from the first to the last."""
    row = await connection.fetchrow(
        """SELECT count(DISTINCT event_id) AS events,
                  extract(epoch FROM (max(produced_at) - min(produced_at)))::float8 AS seconds
           FROM predictions WHERE produced_at >= $1""",
        since,
    )
    return int(row["events"]), float(row["seconds"] or 0.0)
