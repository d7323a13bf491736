"""The gateway's SQL over the entity history (entity_history, written by the
consumer; see services.consumer.history_store)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

# An item's columns; the mean is the hour's sum over its count of values.
_SELECT = """SELECT key, hour, value_sum / nullif(value_count, 0) AS mean, deviation, anomalies, readings,
                    kind, area, latitude, longitude
             FROM entity_history"""


async def history_page(
    db: asyncpg.Pool,
    stream: str,
    *,
    key: str | None,
    area: str | None,
    since: datetime | None,
    until: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
    timeout: float,
) -> list[dict[str, Any]]:
    """Up to ``limit`` rows in (hour, key) order, from after ``after``."""
    after_hour, after_key = after if after is not None else (None, None)
    rows = await db.fetch(
        f"""{_SELECT}
            WHERE stream = $1 AND ($2::text IS NULL OR key = $2) AND ($3::text IS NULL OR area = $3)
              AND ($4::timestamptz IS NULL OR hour >= $4) AND ($5::timestamptz IS NULL OR hour < $5)
              AND ($6::timestamptz IS NULL OR (hour, key) > ($6, $7::text))
            ORDER BY hour, key LIMIT $8""",
        stream, key, area, since, until, after_hour, after_key, limit, timeout=timeout,
    )
    return [dict(row) for row in rows]


async def latest_hour(db: asyncpg.Pool, stream: str, since: datetime, until: datetime, timeout: float) -> datetime | None:
    """The newest hour with history in [since, until)."""
    return await db.fetchval(
        "SELECT max(hour) FROM entity_history WHERE stream = $1 AND hour >= $2 AND hour < $3",
        stream, since, until, timeout=timeout,
    )


async def entity_known(db: asyncpg.Pool, stream: str, key: str, timeout: float) -> bool:
    """Whether the stream has an entity with this key (in its state or its history)."""
    return bool(
        await db.fetchval(
            """SELECT EXISTS (SELECT 1 FROM entity_state WHERE stream = $1 AND key = $2)
                   OR EXISTS (SELECT 1 FROM entity_history WHERE stream = $1 AND key = $2)""",
            stream, key, timeout=timeout,
        )
    )
