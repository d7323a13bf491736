"""The model registry and training runs in PostgreSQL.

Thin async functions over an asyncpg connection or pool; the SQL lives
here and nowhere else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict

from shared.ml.bundle import BundleMeta

Executor = asyncpg.Pool | asyncpg.Connection


class ModelRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    stream: str
    task: str
    version: int
    algorithm: str
    hyperparameters: dict[str, Any]
    features: list[str]
    metrics: dict[str, float]
    evaluation: dict[str, Any] = {}
    training_window: dict[str, Any]
    rows_trained: int
    bundle_dir: str
    sha256: dict[str, str]
    size_bytes: int
    run_id: str | None
    active: bool
    created_at: datetime


class TrainingRun(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    stream: str
    task: str
    algorithm: str | None
    request: dict[str, Any]
    trigger: str
    status: str
    model_id: int | None
    metrics: dict[str, float] | None
    decision: str | None
    candidate_score: float | None
    active_score: float | None
    error: str | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


_MODEL_COLUMNS = (
    "id, stream, task, version, algorithm, hyperparameters, features, metrics, evaluation, training_window, "
    "rows_trained, bundle_dir, sha256, size_bytes, run_id, active, created_at"
)


async def next_version(db: Executor, stream: str, task: str) -> int:
    value = await db.fetchval(
        "SELECT coalesce(max(version), 0) + 1 FROM models WHERE stream = $1 AND task = $2", stream, task
    )
    return int(value)


async def insert_model(db: Executor, *, activate: bool, **fields: Any) -> ModelRecord:
    """Record a bundle; with ``activate`` it becomes the one active model of its
    stream and task in the same transaction."""
    async def _insert(connection: asyncpg.Connection) -> ModelRecord:
        async with connection.transaction():
            if activate:
                await connection.execute(
                    "UPDATE models SET active = false WHERE stream = $1 AND task = $2 AND active",
                    fields["stream"],
                    fields["task"],
                )
            row = await connection.fetchrow(
                f"""INSERT INTO models (stream, task, version, algorithm, hyperparameters, features, metrics,
                        training_window, rows_trained, bundle_dir, sha256, size_bytes, run_id, active, evaluation)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                    RETURNING {_MODEL_COLUMNS}""",
                fields["stream"], fields["task"], fields["version"], fields["algorithm"],
                fields.get("hyperparameters", {}), fields["features"], fields.get("metrics", {}),
                fields.get("training_window", {}), fields["rows_trained"], fields["bundle_dir"],
                fields["sha256"], fields["size_bytes"], fields.get("run_id"), activate, fields.get("evaluation", {}),
            )
        return ModelRecord(**dict(row))

    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as connection:
            return await _insert(connection)
    return await _insert(db)


async def insert_bundle(
    db: Executor,
    meta: BundleMeta,
    bundle_dir: str,
    sha256: dict[str, str],
    size_bytes: int,
    *,
    activate: bool,
    run_id: str | None = None,
) -> ModelRecord:
    """The registry row of a bundle written with ``write_bundle``."""
    return await insert_model(
        db,
        activate=activate,
        stream=meta.stream,
        task=meta.task,
        version=meta.version,
        algorithm=meta.algorithm,
        hyperparameters=meta.hyperparameters,
        features=meta.features,
        metrics=meta.metrics,
        evaluation=meta.evaluation,
        training_window=meta.training_window,
        rows_trained=meta.rows,
        bundle_dir=bundle_dir,
        sha256=sha256,
        size_bytes=size_bytes,
        run_id=run_id,
    )


async def get_model(db: Executor, model_id: int) -> ModelRecord | None:
    row = await db.fetchrow(f"SELECT {_MODEL_COLUMNS} FROM models WHERE id = $1", model_id)
    return ModelRecord(**dict(row)) if row else None


async def active_model(db: Executor, stream: str, task: str) -> ModelRecord | None:
    row = await db.fetchrow(
        f"SELECT {_MODEL_COLUMNS} FROM models WHERE stream = $1 AND task = $2 AND active", stream, task
    )
    return ModelRecord(**dict(row)) if row else None


async def active_models(db: Executor) -> list[ModelRecord]:
    rows = await db.fetch(f"SELECT {_MODEL_COLUMNS} FROM models WHERE active ORDER BY stream, task")
    return [ModelRecord(**dict(row)) for row in rows]


async def list_models(
    db: Executor, stream: str | None = None, task: str | None = None, limit: int = 100
) -> list[ModelRecord]:
    rows = await db.fetch(
        f"""SELECT {_MODEL_COLUMNS} FROM models
            WHERE ($1::text IS NULL OR stream = $1) AND ($2::text IS NULL OR task = $2)
            ORDER BY created_at DESC, id DESC LIMIT $3""",
        stream, task, limit,
    )
    return [ModelRecord(**dict(row)) for row in rows]


_RUN_COLUMNS = (
    "run_id, stream, task, algorithm, request, trigger, status, model_id, metrics, decision, "
    "candidate_score, active_score, error, requested_at, started_at, finished_at"
)


async def queue_run(db: Executor, run_id: str, stream: str, task: str, algorithm: str | None,
                    request: dict[str, Any], trigger: str = "command") -> None:
    """Record a requested run; a redelivered command leaves an existing row alone."""
    await db.execute(
        """INSERT INTO training_runs (run_id, stream, task, algorithm, request, trigger, status)
           VALUES ($1, $2, $3, $4, $5, $6, 'queued') ON CONFLICT (run_id) DO NOTHING""",
        run_id, stream, task, algorithm, request, trigger,
    )


async def start_run(db: Executor, run_id: str) -> None:
    await db.execute(
        "UPDATE training_runs SET status = 'running', started_at = now() WHERE run_id = $1", run_id
    )


async def finish_run(db: Executor, run_id: str, *, model_id: int | None, metrics: dict[str, float],
                     decision: str, candidate_score: float | None, active_score: float | None) -> None:
    await db.execute(
        """UPDATE training_runs SET status = 'done', finished_at = now(), model_id = $2, metrics = $3,
               decision = $4, candidate_score = $5, active_score = $6, error = NULL
           WHERE run_id = $1""",
        run_id, model_id, metrics, decision, candidate_score, active_score,
    )


async def fail_run(db: Executor, run_id: str, error: str) -> None:
    await db.execute(
        "UPDATE training_runs SET status = 'failed', finished_at = now(), error = $2 WHERE run_id = $1",
        run_id, error[:2000],
    )


async def get_run(db: Executor, run_id: str) -> TrainingRun | None:
    row = await db.fetchrow(f"SELECT {_RUN_COLUMNS} FROM training_runs WHERE run_id = $1", run_id)
    return TrainingRun(**dict(row)) if row else None
