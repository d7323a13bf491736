"""The console's reads of the predictions table.

Predictions carry a ``role``: the champion's rows and a shadow model's rows
side by side. The console shows the champion's.
"""

from __future__ import annotations

from typing import Any

import asyncpg

_CHAMPION_ONLY = "AND role = 'champion'"


async def latest(db: asyncpg.Pool, stream: str, events: int, tasks: int = 1) -> list[dict[str, Any]]:
    """Every task's champion prediction for the stream's ``events`` newest scored events, newest first.

    The newest rows are found through the (stream, scored_at) index, a bounded
    number of them, so the page costs the same however long the stream has run.
    """
    rows = await db.fetch(
        f"""WITH recent AS (
                SELECT event_id, scored_at FROM predictions
                WHERE stream = $1 {_CHAMPION_ONLY}
                ORDER BY scored_at DESC LIMIT $3),
            newest AS (
                SELECT event_id, max(scored_at) AS at FROM recent
                GROUP BY event_id ORDER BY at DESC LIMIT $2)
            SELECT p.event_id, p.task, p.key, p.status, p.model_id, p.model_version, p.prediction, p.label,
                   p.score, p.actual, p.actual_label, p.error, p.percent_error, p.produced_at, p.scored_at
            FROM predictions p JOIN newest n USING (event_id)
            WHERE p.stream = $1 {_CHAMPION_ONLY}
            ORDER BY n.at DESC, p.event_id, p.task""",
        stream, events, events * max(tasks, 1) * 2,
    )
    return [dict(row) for row in rows]


# How far back the chart and the history look: the stream's newest rows,
# through the (stream, scored_at) index, whatever the table's size.
RECENT_ROWS = 50_000


async def with_actuals(db: asyncpg.Pool, stream: str, task: str, limit: int) -> list[dict[str, Any]]:
    """The task's newest champion predictions that have an actual value, oldest first
    (among the stream's RECENT_ROWS newest predictions)."""
    rows = await db.fetch(
        f"""WITH recent AS (
                SELECT scored_at, produced_at, task, status, prediction, actual, error, percent_error, model_version
                FROM predictions WHERE stream = $1 {_CHAMPION_ONLY}
                ORDER BY scored_at DESC LIMIT $4)
            SELECT * FROM (
                SELECT scored_at, produced_at, prediction, actual, error, percent_error, model_version FROM recent
                WHERE task = $2 AND status = 'scored' AND actual IS NOT NULL
                ORDER BY scored_at DESC LIMIT $3) newest
            ORDER BY scored_at""",
        stream, task, limit, RECENT_ROWS,
    )
    return [dict(row) for row in rows]


async def entity_history(db: asyncpg.Pool, stream: str, key: str, limit: int = 48) -> list[dict[str, Any]]:
    """One entity's (a sensor's) history per hour, oldest first: readings scored,
    their mean and highest score, and the alerts raised.

    A stopgap: it reads the stream's RECENT_ROWS newest predictions (which
    have every scored reading but not its values) and the alerts table.
    Point it at an hourly history table once there is one.
    """
    rows = await db.fetch(
        f"""WITH recent AS (
                SELECT key, status, score, produced_at, scored_at FROM predictions
                WHERE stream = $1 {_CHAMPION_ONLY}
                ORDER BY scored_at DESC LIMIT $4),
            hours AS (
                SELECT date_trunc('hour', coalesce(produced_at, scored_at)) AS hour, count(*) AS readings,
                       avg(score) AS mean_score, max(score) AS max_score
                FROM recent WHERE key = $2 AND status = 'scored'
                GROUP BY 1 ORDER BY 1 DESC LIMIT $3),
            raised AS (
                SELECT date_trunc('hour', created_at) AS hour, count(*) AS alerts
                FROM alerts WHERE stream = $1 AND key = $2 GROUP BY 1)
            SELECT h.hour, h.readings, h.mean_score, h.max_score, coalesce(r.alerts, 0) AS alerts
            FROM hours h LEFT JOIN raised r USING (hour)
            ORDER BY h.hour""",
        stream, key, limit, RECENT_ROWS,
    )
    return [dict(row) for row in rows]
