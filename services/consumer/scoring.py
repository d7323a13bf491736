"""Scoring a stream's batch with each task's model in service: columns, not rows.

Each task's matrix is built from the events with the inputs its bundle
records (shared.ml.inputs: numbers, and categories one-hot over the model's
own values). An event that lacks one of a task's required inputs is not
scored for that task (its label may still join later; the other tasks go
on); a task without a model yields 'unscored' results (model version 0).
A model that raises while scoring yields 'failed' results carrying that
model's id and version (never version 0, which means "no model yet"),
counted in ``fluxo_scoring_failures_total``. The batch is not retried for
it: the same model on the same inputs fails the same way, and holding the
stream back would stop every other task and stream with it. The 'failed'
rows say which events that model version never scored.
Prediction against actual is computed here too: regression error is
prediction - actual; classification error is 0 when the class is right and
1 when it is wrong.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import structlog

from services.consumer import metrics
from services.consumer.decode import StreamBatch
from shared.ml.inputs import encode_labels, event_inputs, label_text
from shared.ml.serving import ServingModel
from shared.streams import StreamSpec, TaskKind, TaskSpec

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class TaskScores:
    task: TaskSpec
    status: str  # scored | unscored (no model) | failed (the model raised)
    model_id: int | None
    model_version: int
    rows: np.ndarray  # indices into the batch of the events this covers
    prediction: np.ndarray | None  # None when unscored
    score: np.ndarray | None
    labels: list[str] | None  # classification: the predicted classes
    actual: np.ndarray  # NaN where the event carries no target (class index for classification)
    actual_labels: list[str | None] | None
    error: np.ndarray  # NaN where there is no actual (or no prediction)
    seconds: float = 0.0
    positive: int | None = None  # binary classification: the positive class index
    complete: np.ndarray | None = None  # the model's matrix of the rows with every input (drift)

    @property
    def percent_error(self) -> np.ndarray | None:
        """Regression: the error relative to the actual value, in percent
        (NaN where there is no actual, or it is 0)."""
        if self.task.kind is not TaskKind.REGRESSION:
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            percent = 100.0 * self.error / np.abs(self.actual)
        return np.where(np.isfinite(percent), percent, np.nan)


def has_inputs(spec: StreamSpec, task: TaskSpec, events: list[dict]) -> np.ndarray:
    """Events carrying every required input of ``task``."""
    ok = np.ones(len(events), dtype=bool)
    for name in task.required_features:
        part = "categories" if spec.columns.get(name) == "category" else "features"
        ok &= np.array([(event.get(part) or {}).get(name) is not None for event in events], dtype=bool)
    return ok


def actuals(spec: StreamSpec, task: TaskSpec, events: list[dict], classes: list[str] | None) -> tuple[np.ndarray, list[str | None] | None]:
    """The actual value of each event (NaN when unknown) and, for
    classification, its class label."""
    n = len(events)
    if task.target is None:
        return np.full(n, np.nan), None
    values = [(event.get("targets") or {}).get(task.target) for event in events]
    if task.kind is TaskKind.CLASSIFICATION:
        kind = spec.field(task.target).type
        labels = [label_text(value, kind) for value in values]
        return (encode_labels(labels, classes) if classes else np.full(n, np.nan)), labels
    return np.array([v if isinstance(v, int | float) and not isinstance(v, bool) else np.nan for v in values],
                    dtype=np.float64), None


def prediction_errors(kind: TaskKind, prediction: np.ndarray | None, actual: np.ndarray) -> np.ndarray:
    if prediction is None or kind is TaskKind.CLUSTERING:
        return np.full(len(actual), np.nan)
    if kind is TaskKind.CLASSIFICATION:
        wrong = (prediction != actual).astype(np.float64)
        return np.where(np.isnan(actual), np.nan, wrong)
    return prediction - actual


def _unscored(spec: StreamSpec, task: TaskSpec, batch: StreamBatch) -> TaskScores:
    rows = np.flatnonzero(has_inputs(spec, task, batch.events))
    events = [batch.events[i] for i in rows.tolist()]
    actual, actual_labels = actuals(spec, task, events, None)
    return TaskScores(task, "unscored", None, 0, rows, None, None, None, actual, actual_labels,
                      np.full(len(rows), np.nan))


def _failed(spec: StreamSpec, task: TaskSpec, model: ServingModel, batch: StreamBatch) -> TaskScores:
    rows = np.flatnonzero(has_inputs(spec, task, batch.events))
    events = [batch.events[i] for i in rows.tolist()]
    actual, actual_labels = actuals(spec, task, events, model.meta.classes)
    return TaskScores(task, "failed", model.model_id, model.version, rows, None, None, None, actual, actual_labels,
                      np.full(len(rows), np.nan))


def score_task(spec: StreamSpec, task: TaskSpec, model: ServingModel | None, batch: StreamBatch) -> TaskScores:
    if model is None:
        return _unscored(spec, task, batch)
    values = event_inputs(batch.events, model.meta.inputs)
    started = time.perf_counter()
    try:
        answer = model.predict(values, len(batch), task.optional_features)
    except Exception:  # noqa: BLE001 - a model that cannot score must not dead-letter the stream
        log.exception("scoring_failed", stream=spec.name, task=task.name, model_id=model.model_id, version=model.version)
        metrics.SCORING_FAILURES.labels(spec.name, task.name).inc()
        return _failed(spec, task, model, batch)
    seconds = time.perf_counter() - started
    events = [batch.events[i] for i in answer.rows.tolist()]
    actual, actual_labels = actuals(spec, task, events, model.meta.classes)
    return TaskScores(
        task,
        "scored",
        model.model_id,
        model.version,
        answer.rows,
        answer.prediction,
        answer.score,
        model.labels(answer.prediction),
        actual,
        actual_labels,
        prediction_errors(task.kind, answer.prediction, actual),
        seconds,
        model.meta.positive,
        answer.complete,
    )


def score_batch(batch: StreamBatch, models: Mapping[tuple[str, str], ServingModel]) -> list[TaskScores]:
    """Score every task of the batch's stream with its model (champions, or shadows)."""
    spec = batch.stream
    return [score_task(spec, task, models.get((spec.name, task.name)), batch) for task in spec.tasks]


def score_shadows(batch: StreamBatch, shadows: Mapping[tuple[str, str], ServingModel]) -> list[TaskScores]:
    """The shadow of each task that has one (never served: stored apart)."""
    spec = batch.stream
    return [score_task(spec, task, shadows[(spec.name, task.name)], batch)
            for task in spec.tasks if (spec.name, task.name) in shadows]
