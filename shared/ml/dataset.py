"""Features events (decoded dicts) into a task's training matrix.

Columns come from the task declaration (through shared.ml.inputs, which
also fixes the one-hot columns of category features), never from a list
written here. A row that lacks a feature, or (for a supervised task) its
target, or holds a non-finite value, is left out and counted: events whose
label has not arrived yet are scored but not trained on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.ml.inputs import (
    InputColumn,
    build_matrix,
    class_order,
    complete_rows,
    encode_labels,
    event_inputs,
    feature_names,
    input_columns,
    positive_index,
    target_labels,
)
from shared.ml.training import TrainResult, train
from shared.streams import StreamSpec, TaskKind, TaskSpec


@dataclass(frozen=True)
class TaskData:
    X: np.ndarray  # (rows, matrix width), float64
    y: np.ndarray | None  # None for clustering; class indices for classification
    inputs: list[InputColumn]
    dropped: int  # rows without a usable value for every column
    classes: list[str] | None = None
    positive: int | None = None
    kept: np.ndarray | None = None  # indices of the rows used, into the rows given

    @property
    def rows(self) -> int:
        return int(self.X.shape[0])

    @property
    def feature_names(self) -> list[str]:
        return feature_names(self.inputs)


def task_data(
    spec: StreamSpec,
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    inputs: list[InputColumn] | None = None,
    classes: list[str] | None = None,
) -> TaskData:
    """``rows`` are features events as dicts. ``inputs`` and ``classes`` are
    learned from the rows unless given (e.g. a model's own, to score it)."""
    inputs = inputs if inputs is not None else input_columns(spec, task, rows)
    X = build_matrix(inputs, event_inputs(rows, inputs), len(rows))
    keep = complete_rows(X)
    y: np.ndarray | None = None
    positive = None
    if task.kind is TaskKind.REGRESSION:
        assert task.target is not None
        y = np.array([_number((row.get("targets") or {}).get(task.target)) for row in rows], dtype=np.float64)
        keep &= np.isfinite(y)
    elif task.kind is TaskKind.CLASSIFICATION:
        labels = target_labels(spec, task, rows)
        if classes is None:
            classes = class_order(spec, task, [label for label, ok in zip(labels, keep, strict=True) if ok])
        positive = positive_index(task, classes)
        y = encode_labels(labels, classes)
        keep &= np.isfinite(y)
    kept = np.flatnonzero(keep)
    return TaskData(
        X=X[keep],
        y=None if y is None else y[keep],
        inputs=inputs,
        dropped=int(len(rows) - keep.sum()),
        classes=classes,
        positive=positive,
        kept=kept,
    )


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else np.nan


def fit_rows(
    spec: StreamSpec,
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    algorithm: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    test_size: float = 0.2,
    seed: int = 0,
    *,
    min_rows: int | None = None,
) -> TrainResult:
    """Train ``task`` on features events (dicts): the task's matrix, then :func:`train`."""
    data = task_data(spec, task, rows)
    extra = {} if min_rows is None else {"min_rows": min_rows}
    return train(task, algorithm, data.X, data.y, hyperparameters, test_size, seed,
                 inputs=data.inputs, classes=data.classes, positive=data.positive, **extra)
