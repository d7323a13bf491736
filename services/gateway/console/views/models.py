"""How the console reads the model registry and training runs.

The console reads the registry (aliases ``champion`` and ``shadow``, the
activation history, the reason beside each run's decision) only through
these functions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from shared.ml import registry
from shared.ml.registry import ModelRecord
from shared.streams import TaskSpec

CHAMPION = "champion"


def roles(record: ModelRecord) -> list[str]:
    """The model's alias (``champion`` or ``shadow``) as a list, empty for a retired model."""
    return [record.alias] if record.alias else []


def is_champion(record: ModelRecord) -> bool:
    return CHAMPION in roles(record)


def key_metric(record: ModelRecord, task: TaskSpec | None) -> tuple[str, float | None]:
    """The metric the champion gate compares for the task (r2, f1, silhouette...), or the first one there is."""
    if task is not None:
        name = task.gate_metric
        if name in record.metrics:
            return name, record.metrics[name]
        positive = name.removeprefix("neg_")
        if positive in record.metrics:  # the registry keeps MAE and RMSE as themselves
            return positive, record.metrics[positive]
    for name, value in record.metrics.items():
        return name, value
    return "", None


async def champions(db: asyncpg.Pool) -> dict[tuple[str, str], ModelRecord]:
    """The model each stream and task is scored with, by (stream, task)."""
    return {(record.stream, record.task): record for record in await registry.active_models(db)}


async def models(db: asyncpg.Pool, stream: str | None = None, limit: int = 200) -> list[ModelRecord]:
    return await registry.list_models(db, stream, None, limit)


async def recent_runs(db: asyncpg.Pool, limit: int = 30) -> list[dict[str, Any]]:
    """The newest training runs, with every column the table has (a ``reason`` included once it exists)."""
    rows = await db.fetch(
        "SELECT to_jsonb(r) AS run FROM training_runs r ORDER BY requested_at DESC, run_id LIMIT $1", limit
    )
    return [_times(dict(row["run"])) for row in rows]


async def run(db: asyncpg.Pool, run_id: str) -> dict[str, Any] | None:
    """One run as registry.get_run gives it, plus any column it does not know yet (``reason``)."""
    known = await registry.get_run(db, run_id)
    if known is None:
        return None
    row = await db.fetchrow("SELECT to_jsonb(r) AS run FROM training_runs r WHERE run_id = $1", run_id)
    extra = _times(dict(row["run"])) if row else {}
    return {**extra, **known.model_dump()}


def _times(run: dict[str, Any]) -> dict[str, Any]:
    # to_jsonb writes timestamps as text: give the templates datetimes again.
    for name in ("requested_at", "started_at", "finished_at"):
        value = run.get(name)
        if isinstance(value, str):
            run[name] = datetime.fromisoformat(value)
    return run


def decision_reason(run: dict[str, Any]) -> str | None:
    """Why the run's model was (not) made champion: the registry's own reason if
    it gives one, else the two scores the decision compared."""
    reason = run.get("reason")
    if reason:
        return str(reason)
    candidate, active = run.get("candidate_score"), run.get("active_score")
    if candidate is None:
        return None
    if active is None:
        return f"candidate scored {candidate:.4g}; there was no model to beat"
    return f"candidate scored {candidate:.4g} against the champion's {active:.4g}"
