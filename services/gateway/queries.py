"""The gateway's own SQL: datasets, predictions, alerts and sensors.

(The model registry and training runs live in shared.ml.registry.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg


async def insert_dataset(
    db: asyncpg.Pool,
    *,
    dataset_id: str,
    stream: str,
    filename: str,
    content_type: str | None,
    size_bytes: int,
    sha256: str,
    rows_total: int,
    rows_accepted: int,
    rows_rejected: int,
) -> None:
    await db.execute(
        """INSERT INTO datasets (id, stream, filename, content_type, size_bytes, sha256,
                                 rows_total, rows_accepted, rows_rejected)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        dataset_id, stream, filename, content_type, size_bytes, sha256, rows_total, rows_accepted, rows_rejected,
    )


async def dataset_stream(db: asyncpg.Pool, dataset_id: str) -> str | None:
    return await db.fetchval("SELECT stream FROM datasets WHERE id = $1", dataset_id)


async def recent_predictions(
    db: asyncpg.Pool, stream: str | None, task: str | None, since: datetime | None, limit: int
) -> list[dict[str, Any]]:
    rows = await db.fetch(
        """SELECT event_id, stream, task, key, status, model_id, model_version, prediction, score,
                  actual, error, produced_at, scored_at
           FROM predictions
           WHERE ($1::text IS NULL OR stream = $1) AND ($2::text IS NULL OR task = $2)
             AND ($3::timestamptz IS NULL OR scored_at > $3)
           ORDER BY scored_at DESC, event_id LIMIT $4""",
        stream, task, since, limit,
    )
    return [dict(row) for row in rows]


async def recent_alerts(
    db: asyncpg.Pool, stream: str | None, since: datetime | None, limit: int
) -> list[dict[str, Any]]:
    rows = await db.fetch(
        """SELECT event_id, stream, sensor_id, neighbourhood, latitude, longitude, value, score,
                  model_version, reading_at, created_at
           FROM alerts
           WHERE ($1::text IS NULL OR stream = $1) AND ($2::timestamptz IS NULL OR created_at > $2)
           ORDER BY created_at DESC, event_id LIMIT $3""",
        stream, since, limit,
    )
    return [dict(row) for row in rows]


async def sensors(
    db: asyncpg.Pool, neighbourhood: str | None, alert_only: bool, limit: int
) -> list[dict[str, Any]]:
    rows = await db.fetch(
        """SELECT s.sensor_id, s.neighbourhood, s.latitude, s.longitude, s.sensor_type, s.pressure_mca,
                  s.media_hora, s.media_30d, s.std_30d, s.last_score, s.alert, s.reading_at, s.updated_at,
                  coalesce(a.alerts_24h, 0) AS alerts_24h, a.last_alert_at
           FROM sensor_state s
           LEFT JOIN LATERAL (
               SELECT count(*) FILTER (WHERE created_at > now() - interval '24 hours') AS alerts_24h,
                      max(created_at) AS last_alert_at
               FROM alerts WHERE alerts.sensor_id = s.sensor_id
           ) a ON true
           WHERE ($1::text IS NULL OR s.neighbourhood = $1) AND (NOT $2 OR s.alert)
           ORDER BY s.sensor_id LIMIT $3""",
        neighbourhood, alert_only, limit,
    )
    return [dict(row) for row in rows]
