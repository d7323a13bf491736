"""Prediction against actual, and the rolling error per model version: pure
functions from prediction rows to chart data."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.gateway.console.charts import line_chart
from shared.streams import TaskKind

ROLLING = 20  # predictions with an actual in each point of the rolling error


def _at(row: dict[str, Any]) -> float:
    moment: datetime = row.get("produced_at") or row["scored_at"]
    return moment.timestamp()


def swaps(rows: Sequence[dict[str, Any]]) -> list[tuple[float, str]]:
    """(time, "v3") wherever the model version changes from one row to the next."""
    marks: list[tuple[float, str]] = []
    previous = None
    for row in rows:
        version = row["model_version"]
        if previous is not None and version != previous:
            marks.append((_at(row), f"v{version}"))
        previous = version
    return marks


def _miss(kind: TaskKind, row: dict[str, Any]) -> float:
    """What one prediction adds to the rolling error: |error| in the target's
    unit (regression), 1 for a wrong class and 0 for a right one (classification)."""
    error = row.get("error")
    if error is None:
        return 0.0
    return abs(error) if kind is TaskKind.REGRESSION else float(error != 0)


def accuracy_charts(kind: TaskKind, rows: Sequence[dict[str, Any]]) -> tuple[dict[str, object], dict[str, object]]:
    """(prediction and actual over time, rolling error per model version), with model swaps marked.

    Each version's rolling error starts afresh when the version starts scoring.
    """
    ordered = sorted(rows, key=_at)
    x = [_at(row) for row in ordered]
    marks = swaps(ordered)
    versus = line_chart(
        x,
        {"actual": [row["actual"] for row in ordered], "prediction": [row["prediction"] for row in ordered]},
        markers=marks,
    )
    versions = sorted({row["model_version"] for row in ordered})
    windows: dict[int, deque[float]] = {version: deque(maxlen=ROLLING) for version in versions}
    series: dict[str, list[float | None]] = {_error_label(kind, v): [None] * len(ordered) for v in versions}
    for index, row in enumerate(ordered):
        version = row["model_version"]
        window = windows[version]
        window.append(_miss(kind, row))
        series[_error_label(kind, version)][index] = sum(window) / len(window)
    return versus, line_chart(x, series, markers=marks)


def _error_label(kind: TaskKind, version: int) -> str:
    what = "mean absolute error" if kind is TaskKind.REGRESSION else "error rate"
    return f"v{version} {what}"
