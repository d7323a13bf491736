"""The gateway's own SQL: datasets, predictions, alerts and sensors.

(The model registry and training runs live in shared.ml.registry.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg


async def begin_dataset(
    db: asyncpg.Pool,
    *,
    dataset_id: str,
    stream: str,
    filename: str,
    content_type: str | None,
    size_bytes: int,
    sha256: str,
    rows_total: int,
) -> dict[str, Any] | None:
    """Record an upload as 'publishing' before any row is published; returns
    the existing row instead when ``dataset_id`` is known (a retry under the
    same idempotency key), None when the row is new."""
    inserted = await db.fetchval(
        """INSERT INTO datasets (id, stream, filename, content_type, size_bytes, sha256,
                                 rows_total, rows_accepted, rows_rejected, status)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, 'publishing')
           ON CONFLICT (id) DO NOTHING RETURNING id""",
        dataset_id, stream, filename, content_type, size_bytes, sha256, rows_total,
    )
    if inserted is not None:
        return None
    row = await db.fetchrow(
        """SELECT id, stream, filename, content_type, size_bytes, sha256, rows_total, rows_accepted,
                  rows_rejected, status FROM datasets WHERE id = $1""", dataset_id)
    return dict(row) if row else None


async def complete_dataset(db: asyncpg.Pool, dataset_id: str, *, rows_accepted: int, rows_rejected: int) -> None:
    """Every accepted row was acknowledged by Kafka: the dataset may be trained on."""
    await db.execute(
        """UPDATE datasets SET status = 'complete', completed_at = now(), rows_accepted = $2, rows_rejected = $3
           WHERE id = $1""",
        dataset_id, rows_accepted, rows_rejected,
    )


async def dataset_stream(db: asyncpg.Pool, dataset_id: str) -> str | None:
    return await db.fetchval("SELECT stream FROM datasets WHERE id = $1", dataset_id)


async def dataset_state(db: asyncpg.Pool, dataset_id: str) -> tuple[str, str] | None:
    """(stream, status) of an upload: 'publishing' until every row was acknowledged."""
    row = await db.fetchrow("SELECT stream, status FROM datasets WHERE id = $1", dataset_id)
    return (row["stream"], row["status"]) if row else None


async def recent_predictions(
    db: asyncpg.Pool, stream: str | None, task: str | None, since: datetime | None, limit: int, role: str = "champion"
) -> list[dict[str, Any]]:
    rows = await db.fetch(
        """SELECT event_id, stream, task, key, status, model_id, model_version, prediction, label, score,
                  actual, actual_label, error, percent_error, produced_at, scored_at, role
           FROM predictions
           WHERE ($1::text IS NULL OR stream = $1) AND ($2::text IS NULL OR task = $2)
             AND ($3::timestamptz IS NULL OR scored_at > $3) AND role = $5
           ORDER BY scored_at DESC, event_id LIMIT $4""",
        stream, task, since, limit, role,
    )
    return [dict(row) for row in rows]


async def recent_alerts(
    db: asyncpg.Pool, stream: str | None, since: datetime | None, limit: int
) -> list[dict[str, Any]]:
    rows = await db.fetch(
        """SELECT event_id, stream, task, key, area, latitude, longitude, value, score,
                  model_version, reading_at, created_at
           FROM alerts
           WHERE ($1::text IS NULL OR stream = $1) AND ($2::timestamptz IS NULL OR created_at > $2)
           ORDER BY created_at DESC, event_id LIMIT $3""",
        stream, since, limit,
    )
    return [dict(row) for row in rows]


async def entities(
    db: asyncpg.Pool, stream: str, area: str | None, alert_only: bool, limit: int
) -> list[dict[str, Any]]:
    """The latest state of each entity of ``stream``, its declared state values
    flattened into the row, with its alerts of the last 24 hours."""
    rows = await db.fetch(
        """SELECT e.key, e.area, e.latitude, e.longitude, e.kind, e.state, e.last_score, e.alert,
                  e.reading_at, e.updated_at,
                  coalesce(a.alerts_24h, 0) AS alerts_24h, a.last_alert_at
           FROM entity_state e
           LEFT JOIN LATERAL (
               SELECT count(*) FILTER (WHERE created_at > now() - interval '24 hours') AS alerts_24h,
                      max(created_at) AS last_alert_at
               FROM alerts WHERE alerts.stream = e.stream AND alerts.key = e.key
           ) a ON true
           WHERE e.stream = $1 AND ($2::text IS NULL OR e.area = $2) AND (NOT $3 OR e.alert)
           ORDER BY e.key LIMIT $4""",
        stream, area, alert_only, limit,
    )
    out = []
    for row in rows:
        item = dict(row)
        state = item.pop("state") or {}
        out.append({**item, **state})
    return out
