"""Features events (decoded dicts) into a task's training matrix.

Columns come from the task declaration, never from a list written here. A
row that lacks a feature, or (for a supervised task) its target, or holds a
non-finite value, is left out and counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.streams import TaskKind, TaskSpec


@dataclass(frozen=True)
class TaskData:
    X: np.ndarray  # (rows, len(task.features)), float64
    y: np.ndarray | None  # None for clustering
    dropped: int  # rows without a usable value for every column

    @property
    def rows(self) -> int:
        return int(self.X.shape[0])


def _column(rows: Sequence[Mapping[str, Any]], part: str, name: str) -> np.ndarray:
    values = np.full(len(rows), np.nan)
    for i, row in enumerate(rows):
        value = (row.get(part) or {}).get(name)
        # bool labels (anomaly) arrive as true/false or 0/1.
        if isinstance(value, int | float):
            values[i] = float(value)
    return values


def task_matrix(task: TaskSpec, rows: Sequence[Mapping[str, Any]]) -> TaskData:
    """``rows`` are features events as dicts (``features`` and ``targets`` maps)."""
    if not rows:
        return TaskData(np.empty((0, len(task.features))), None if task.kind is TaskKind.CLUSTERING else np.empty(0), 0)
    X = np.column_stack([_column(rows, "features", name) for name in task.features])
    keep = np.isfinite(X).all(axis=1)
    y: np.ndarray | None = None
    if task.kind is not TaskKind.CLUSTERING:
        assert task.target is not None, f"task {task.name} is supervised but declares no target"
        y = _column(rows, "targets", task.target)
        keep &= np.isfinite(y)
        y = y[keep]
    return TaskData(X[keep], y, int(len(rows) - keep.sum()))
