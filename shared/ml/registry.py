"""The model registry and training runs in PostgreSQL.

Thin async functions over an asyncpg connection or pool; the SQL lives
here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    active: bool  # the champion: the model served
    shadow: bool = False  # scored beside the champion, never served
    monitoring: dict[str, Any] = {}
    created_at: datetime

    @property
    def alias(self) -> str | None:
        return "champion" if self.active else "shadow" if self.shadow else None


class Activation(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    stream: str
    task: str
    model_id: int
    alias: str
    previous_model_id: int | None
    trigger: str
    actor: str
    reason: str
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
    gate_rows: int | None = None
    reason: str | None = None
    error: str | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


_MODEL_COLUMNS = (
    "id, stream, task, version, algorithm, hyperparameters, features, metrics, evaluation, training_window, "
    "rows_trained, bundle_dir, sha256, size_bytes, run_id, active, shadow, monitoring, created_at"
)
CHAMPION = "champion"
SHADOW = "shadow"
RETIRED = "retired"


async def next_version(db: Executor, stream: str, task: str) -> int:
    value = await db.fetchval(
        "SELECT coalesce(max(version), 0) + 1 FROM models WHERE stream = $1 AND task = $2", stream, task
    )
    return int(value)


async def _in_transaction(db: Executor, work: Any) -> Any:
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as connection, connection.transaction():
            return await work(connection)
    async with db.transaction():
        return await work(db)


async def _record(connection: asyncpg.Connection, stream: str, task: str, model_id: int, alias: str,
                  previous: int | None, trigger: str, actor: str, reason: str) -> None:
    await connection.execute(
        """INSERT INTO model_activations (stream, task, model_id, alias, previous_model_id, trigger, actor, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        stream, task, model_id, alias, previous, trigger, actor, reason[:2000],
    )


async def _take_alias(connection: asyncpg.Connection, stream: str, task: str, model_id: int, alias: str,
                      trigger: str, actor: str, reason: str) -> None:
    """Make ``model_id`` the champion or the shadow of its task, recording who
    held it before (the rows are locked for the transaction)."""
    column = "active" if alias == CHAMPION else "shadow"
    previous = await connection.fetchval(
        f"SELECT id FROM models WHERE stream = $1 AND task = $2 AND {column} FOR UPDATE", stream, task
    )
    if previous == model_id:
        return
    if previous is not None:
        await connection.execute(f"UPDATE models SET {column} = false WHERE id = $1", previous)
    # A shadow promoted to champion stops being the shadow.
    await connection.execute(f"UPDATE models SET {column} = true, shadow = false WHERE id = $1"
                             if alias == CHAMPION else f"UPDATE models SET {column} = true WHERE id = $1", model_id)
    await _record(connection, stream, task, model_id, alias, previous, trigger, actor, reason)


async def insert_model(db: Executor, *, alias: str | None = None, trigger: str = "training", actor: str = "trainer",
                       reason: str = "", **fields: Any) -> ModelRecord:
    """Record a bundle; with ``alias`` (champion or shadow) it takes that
    alias of its stream and task in the same transaction, and the change is
    recorded in the activation history."""
    async def insert(connection: asyncpg.Connection) -> ModelRecord:
        row = await connection.fetchrow(
            f"""INSERT INTO models (stream, task, version, algorithm, hyperparameters, features, metrics,
                    training_window, rows_trained, bundle_dir, sha256, size_bytes, run_id, evaluation)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                RETURNING {_MODEL_COLUMNS}""",
            fields["stream"], fields["task"], fields["version"], fields["algorithm"],
            fields.get("hyperparameters", {}), fields["features"], fields.get("metrics", {}),
            fields.get("training_window", {}), fields["rows_trained"], fields["bundle_dir"],
            fields["sha256"], fields["size_bytes"], fields.get("run_id"), fields.get("evaluation", {}),
        )
        if alias is None:
            return ModelRecord(**dict(row))
        await _take_alias(connection, fields["stream"], fields["task"], row["id"], alias, trigger, actor, reason)
        row = await connection.fetchrow(f"SELECT {_MODEL_COLUMNS} FROM models WHERE id = $1", row["id"])
        return ModelRecord(**dict(row))

    return await _in_transaction(db, insert)


class AliasConflict(ValueError):
    """An alias change that contradicts the model's current role."""


async def set_alias(db: Executor, model_id: int, alias: str, *, trigger: str, actor: str, reason: str) -> ModelRecord:
    """Give a registered model an alias: ``champion`` (promote, or roll back to
    an earlier version), ``shadow``, or ``retired`` (it stops being the shadow)."""
    async def change(connection: asyncpg.Connection) -> ModelRecord:
        row = await connection.fetchrow(f"SELECT {_MODEL_COLUMNS} FROM models WHERE id = $1 FOR UPDATE", model_id)
        if row is None:
            raise KeyError(f"no model {model_id}")
        if alias == SHADOW and row["active"]:
            raise AliasConflict(f"model {model_id} is the champion of {row['stream']}/{row['task']}; "
                                "it cannot also be its shadow")
        if alias == RETIRED:
            if not row["shadow"]:
                raise AliasConflict(f"model {model_id} is not the shadow of {row['stream']}/{row['task']}; "
                                    "only a shadow is retired (roll back by making another version the champion)")
            await connection.execute("UPDATE models SET shadow = false WHERE id = $1", model_id)
            await _record(connection, row["stream"], row["task"], model_id, RETIRED, None, trigger, actor, reason)
        else:
            await _take_alias(connection, row["stream"], row["task"], model_id, alias, trigger, actor, reason)
        return ModelRecord(**dict(await connection.fetchrow(f"SELECT {_MODEL_COLUMNS} FROM models WHERE id = $1",
                                                            model_id)))

    return await _in_transaction(db, change)


async def activations(db: Executor, stream: str | None = None, task: str | None = None,
                      model_id: int | None = None, limit: int = 100) -> list[Activation]:
    rows = await db.fetch(
        """SELECT id, stream, task, model_id, alias, previous_model_id, trigger, actor, reason, created_at
           FROM model_activations
           WHERE ($1::text IS NULL OR stream = $1) AND ($2::text IS NULL OR task = $2)
             AND ($3::bigint IS NULL OR model_id = $3 OR previous_model_id = $3)
           ORDER BY created_at DESC, id DESC LIMIT $4""",
        stream, task, model_id, limit,
    )
    return [Activation(**dict(row)) for row in rows]


async def served_models(db: Executor) -> list[ModelRecord]:
    """Every champion and shadow: what scoring processes load."""
    rows = await db.fetch(f"SELECT {_MODEL_COLUMNS} FROM models WHERE active OR shadow ORDER BY stream, task")
    return [ModelRecord(**dict(row)) for row in rows]


async def shadow_model(db: Executor, stream: str, task: str) -> ModelRecord | None:
    row = await db.fetchrow(
        f"SELECT {_MODEL_COLUMNS} FROM models WHERE stream = $1 AND task = $2 AND shadow", stream, task
    )
    return ModelRecord(**dict(row)) if row else None


async def shadows(db: Executor) -> list[ModelRecord]:
    rows = await db.fetch(f"SELECT {_MODEL_COLUMNS} FROM models WHERE shadow ORDER BY stream, task")
    return [ModelRecord(**dict(row)) for row in rows]


async def update_monitoring(db: Executor, model_id: int, monitoring: dict[str, Any]) -> None:
    """Merge ``monitoring``'s keys into the model's (drift, degradation, a shadow's comparison)."""
    await db.execute("UPDATE models SET monitoring = monitoring || $2::jsonb WHERE id = $1", model_id, monitoring)


async def insert_bundle(
    db: Executor,
    meta: BundleMeta,
    bundle_dir: str,
    sha256: dict[str, str],
    size_bytes: int,
    *,
    activate: bool = False,
    shadow: bool = False,
    run_id: str | None = None,
    trigger: str = "training",
    actor: str = "trainer",
    reason: str = "",
) -> ModelRecord:
    """The registry row of a bundle written with ``write_bundle``; ``activate``
    makes it the champion, ``shadow`` the shadow."""
    return await insert_model(
        db,
        alias=CHAMPION if activate else SHADOW if shadow else None,
        trigger=trigger,
        actor=actor,
        reason=reason,
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
    "candidate_score, active_score, gate_rows, reason, error, requested_at, started_at, finished_at"
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


async def claim_run(db: Executor, run_id: str) -> bool:
    """Mark the run running if it may run: queued, or running already (a
    trainer that died mid-run and got its command again). A run the gateway
    abandoned, or one finished, is not claimed: a command delivered late
    after its request was refused never executes."""
    claimed = await db.fetchval(
        """UPDATE training_runs SET status = 'running', started_at = now()
           WHERE run_id = $1 AND status IN ('queued', 'running') RETURNING run_id""",
        run_id,
    )
    return claimed is not None


async def abandon_run(db: Executor, run_id: str, error: str) -> bool:
    """Fail a run that no trainer has claimed yet (its command could not be
    sent); returns whether it was still queued."""
    abandoned = await db.fetchval(
        """UPDATE training_runs SET status = 'failed', finished_at = now(), error = $2
           WHERE run_id = $1 AND status = 'queued' RETURNING run_id""",
        run_id, error[:2000],
    )
    return abandoned is not None


async def finish_run(db: Executor, run_id: str, *, model_id: int | None, metrics: dict[str, float],
                     decision: str, candidate_score: float | None, active_score: float | None,
                     gate_rows: int | None = None, reason: str | None = None) -> None:
    await db.execute(
        """UPDATE training_runs SET status = 'done', finished_at = now(), model_id = $2, metrics = $3,
               decision = $4, candidate_score = $5, active_score = $6, gate_rows = $7, reason = $8, error = NULL
           WHERE run_id = $1""",
        run_id, model_id, metrics, decision, candidate_score, active_score, gate_rows, reason,
    )


async def fail_run(db: Executor, run_id: str, error: str) -> None:
    await db.execute(
        "UPDATE training_runs SET status = 'failed', finished_at = now(), error = $2 WHERE run_id = $1",
        run_id, error[:2000],
    )


async def abandon_scheduled_runs(db: Executor, streams: Sequence[str] | None, error: str) -> list[str]:
    """Fail the scheduled runs of ``streams`` (all when None) still 'queued'
    or 'running'; returns their ids. A trainer calls it as it starts: a
    scheduled run has no command that delivers it again, so one its
    predecessor was killed in would stay 'running' for ever (seen in
    tests/faults/test_kills.py). Commanded runs are left alone: their command
    is delivered again and runs them to the end."""
    rows = await db.fetch(
        """UPDATE training_runs SET status = 'failed', finished_at = now(), error = $2
           WHERE trigger = 'schedule' AND status IN ('queued', 'running')
             AND ($1::text[] IS NULL OR stream = ANY($1::text[]))
           RETURNING run_id""",
        list(streams) if streams is not None else None, error[:2000],
    )
    return sorted(row["run_id"] for row in rows)


async def get_run(db: Executor, run_id: str) -> TrainingRun | None:
    row = await db.fetchrow(f"SELECT {_RUN_COLUMNS} FROM training_runs WHERE run_id = $1", run_id)
    return TrainingRun(**dict(row)) if row else None
