"""The console's reads of the predictions table.

Predictions are about to carry a ``role`` (the champion's rows and a shadow
model's rows side by side); the console shows the champion's. Until the
column exists every row is the champion's.
"""

from __future__ import annotations

from typing import Any

import asyncpg

_HAS_ROLE: dict[int, bool] = {}  # per pool: the column is there or not (checked once)


async def _champion_only(db: asyncpg.Pool) -> str:
    key = id(db)
    if key not in _HAS_ROLE:
        _HAS_ROLE[key] = bool(await db.fetchval(
            """SELECT EXISTS (SELECT 1 FROM information_schema.columns
                              WHERE table_schema = current_schema() AND table_name = 'predictions'
                                AND column_name = 'role')"""
        ))
    return "AND (role IS NULL OR role = 'champion')" if _HAS_ROLE[key] else ""


async def latest(db: asyncpg.Pool, stream: str, events: int) -> list[dict[str, Any]]:
    """Every task's champion prediction for the stream's ``events`` newest scored events, newest first."""
    rows = await db.fetch(
        f"""WITH newest AS (
                SELECT event_id, max(scored_at) AS at FROM predictions
                WHERE stream = $1 {await _champion_only(db)}
                GROUP BY event_id ORDER BY at DESC LIMIT $2)
            SELECT p.event_id, p.task, p.key, p.status, p.model_id, p.model_version, p.prediction, p.label,
                   p.score, p.actual, p.actual_label, p.error, p.percent_error, p.produced_at, p.scored_at
            FROM predictions p JOIN newest n USING (event_id)
            WHERE p.stream = $1 {await _champion_only(db)}
            ORDER BY n.at DESC, p.event_id, p.task""",
        stream, events,
    )
    return [dict(row) for row in rows]


async def with_actuals(db: asyncpg.Pool, stream: str, task: str, limit: int) -> list[dict[str, Any]]:
    """The task's newest champion predictions that have an actual value, oldest first."""
    rows = await db.fetch(
        f"""SELECT * FROM (
                SELECT scored_at, produced_at, prediction, actual, error, percent_error, model_version
                FROM predictions
                WHERE stream = $1 AND task = $2 AND status = 'scored' AND actual IS NOT NULL
                  {await _champion_only(db)}
                ORDER BY scored_at DESC LIMIT $3) newest
            ORDER BY scored_at""",
        stream, task, limit,
    )
    return [dict(row) for row in rows]


async def entity_history(db: asyncpg.Pool, stream: str, key: str, limit: int = 48) -> list[dict[str, Any]]:
    """One entity's (a sensor's) history per hour, oldest first: readings scored,
    their mean and highest score, and the alerts raised.

    This reads the predictions and alerts tables, which have every scored
    reading but not its values; point it at an hourly history table once
    there is one.
    """
    rows = await db.fetch(
        f"""WITH hours AS (
                SELECT date_trunc('hour', coalesce(produced_at, scored_at)) AS hour, count(*) AS readings,
                       avg(score) AS mean_score, max(score) AS max_score
                FROM predictions
                WHERE stream = $1 AND key = $2 AND status = 'scored' {await _champion_only(db)}
                GROUP BY 1 ORDER BY 1 DESC LIMIT $3),
            raised AS (
                SELECT date_trunc('hour', created_at) AS hour, count(*) AS alerts
                FROM alerts WHERE stream = $1 AND key = $2 GROUP BY 1)
            SELECT h.hour, h.readings, h.mean_score, h.max_score, coalesce(r.alerts, 0) AS alerts
            FROM hours h LEFT JOIN raised r USING (hour)
            ORDER BY h.hour""",
        stream, key, limit,
    )
    return [dict(row) for row in rows]
