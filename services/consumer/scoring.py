"""Scoring a stream's batch with each task's active model: columns, not rows.

Feature values become one float64 column per feature; each task's matrix
is stacked from the columns its bundle names. A task without a model yields
'unscored' results (model version 0). Prediction against actual is computed
here too: regression error is prediction - actual; classification error is
0 when the class is right and 1 when it is wrong.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog

from services.consumer.decode import StreamBatch
from shared.ml.serving import ServingModel
from shared.streams import StreamSpec, TaskKind, TaskSpec

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class TaskScores:
    task: TaskSpec
    status: str  # scored | unscored
    model_id: int | None
    model_version: int
    prediction: np.ndarray | None  # None when unscored
    score: np.ndarray | None
    actual: np.ndarray  # NaN where the event carries no target
    error: np.ndarray  # NaN where there is no actual (or no prediction)
    seconds: float = 0.0


def column(events: list[dict[str, Any]], part: str, name: str) -> np.ndarray:
    """One value per event as float64; NaN where absent or not a number."""
    values = [(event.get(part) or {}).get(name) for event in events]
    try:
        # The common case: every value is a number (None becomes NaN).
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.array(
            [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else np.nan for v in values],
            dtype=np.float64,
        )


def feature_columns(batch: StreamBatch, names: tuple[str, ...] | list[str]) -> dict[str, np.ndarray]:
    return {name: column(batch.events, "features", name) for name in names}


def required_features(stream: StreamSpec) -> tuple[str, ...]:
    """Features some task cannot do without (optional ones take training means)."""
    names: dict[str, None] = {}
    for task in stream.tasks:
        for name in task.features:
            if name not in task.optional_features:
                names[name] = None
    return tuple(names)


def missing_reasons(stream: StreamSpec, columns: Mapping[str, np.ndarray]) -> dict[int, str]:
    """Row index -> why it cannot be scored, for rows lacking a required feature."""
    reasons: dict[int, str] = {}
    for name in required_features(stream):
        bad = ~np.isfinite(columns[name])
        for i in np.flatnonzero(bad).tolist():
            reasons.setdefault(i, f"features.{name}: missing or not a finite number")
    return reasons


def model_matrix(model: ServingModel, task: TaskSpec, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """The bundle's features in its order; absent optional ones take the
    bundle's training mean."""
    parts = []
    for name in model.features:
        values = columns[name]
        if name in task.optional_features:
            values = np.where(np.isfinite(values), values, model.meta.feature_means.get(name, 0.0))
        parts.append(values)
    return np.column_stack(parts).astype(np.float32)


def prediction_errors(kind: TaskKind, prediction: np.ndarray | None, actual: np.ndarray) -> np.ndarray:
    if prediction is None or kind is TaskKind.CLUSTERING:
        return np.full(len(actual), np.nan)
    if kind is TaskKind.CLASSIFICATION:
        wrong = (prediction != actual).astype(np.float64)
        return np.where(np.isnan(actual), np.nan, wrong)
    return prediction - actual


def score_task(task: TaskSpec, model: ServingModel | None, batch: StreamBatch, columns: Mapping[str, np.ndarray]) -> TaskScores:
    n = len(batch)
    actual = column(batch.events, "targets", task.target) if task.target else np.full(n, np.nan)
    if model is None:
        return TaskScores(task, "unscored", None, 0, None, None, actual, np.full(n, np.nan))
    started = time.perf_counter()
    try:
        scores = model.score(model_matrix(model, task, columns))
    except Exception:  # noqa: BLE001 - a model that cannot score must not dead-letter the stream
        log.exception("scoring_failed", task=task.name, model_id=model.model_id, version=model.version)
        return TaskScores(task, "unscored", None, 0, None, None, actual, np.full(n, np.nan))
    seconds = time.perf_counter() - started
    return TaskScores(
        task,
        "scored",
        model.model_id,
        model.version,
        scores.prediction,
        scores.score,
        actual,
        prediction_errors(task.kind, scores.prediction, actual),
        seconds,
    )


def score_batch(batch: StreamBatch, models: Mapping[tuple[str, str], ServingModel]) -> tuple[StreamBatch, list[TaskScores], dict[int, str]]:
    """Score every task of the batch's stream. Returns the scorable rows, a
    result per task and, for the rows left out, the reason (by index into
    the original batch)."""
    stream = batch.stream
    columns = feature_columns(batch, stream.features)
    reasons = missing_reasons(stream, columns)
    if reasons:
        keep = np.ones(len(batch), dtype=bool)
        keep[list(reasons)] = False
        batch = batch.keep(keep)
        columns = {name: values[keep] for name, values in columns.items()}
    results = [score_task(task, models.get((stream.name, task.name)), batch, columns) for task in stream.tasks]
    return batch, results, reasons
