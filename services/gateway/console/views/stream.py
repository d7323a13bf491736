"""A stream's page, built from its declaration: the newest events with their
predictions, prediction against actual per task, the totals of its
quantities and its recent dead letters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.gateway.console.live.runtime import ConsoleRuntime
from services.gateway.console.live.window import DeadLetter, StreamWindow, Total
from services.gateway.console.views import predictions
from services.gateway.console.views.accuracy import accuracy_charts
from services.gateway.console.views.guard import Outage, guarded
from services.gateway.state import GatewayState
from shared.streams import StreamSpec, TaskKind
from shared.streams.catalog import Declared

LIVE_EVENTS = 20
CHART_POINTS = 400
SHOWN_WHEN_NO_CONTEXT = 4


@dataclass(frozen=True)
class Cell:
    """One task's prediction for one event, as shown."""

    status: str
    prediction: Any  # the label for classification, else the number
    actual: Any
    error: float | None
    percent_error: float | None
    model_version: int


@dataclass(frozen=True)
class EventRow:
    event_id: str
    key: str | None
    produced_at: datetime | None
    values: dict[str, Any]  # shown column -> value ("" when the console has not seen the event)
    cells: dict[str, Cell]


@dataclass(frozen=True)
class LiveTable:
    columns: list[str]
    tasks: list[str]
    rows: list[EventRow] | Outage
    seen_by_console: bool  # whether the console follows the features topic (else values are missing)


@dataclass(frozen=True)
class TaskChart:
    task: str
    kind: str
    target: str
    unit: str
    points: int
    versus: dict[str, object] | None = None
    rolling: dict[str, object] | None = None


@dataclass
class StreamSummary:
    declared: Declared
    events_per_second: float | None
    dead_letters_per_second: float | None
    totals: list[Total]
    totals_events: int
    totals_since: datetime | None
    dead_letters: list[DeadLetter] = field(default_factory=list)


def shown_columns(spec: StreamSpec, totalled: list[str]) -> list[str]:
    """The record's columns the live table shows: the declared context (the key
    has its own column) and the quantities totalled; without a context, the
    first few fields."""
    context = [name for name in spec.context if name != spec.key]
    if not context:
        context = [f.name for f in spec.fields if f.name != spec.key and f.name not in spec.targets]
        context = context[:SHOWN_WHEN_NO_CONTEXT]
    return context + [name for name in totalled if name not in context]


def _value(event: dict[str, Any] | None, name: str) -> Any:
    if event is None:
        return ""
    for part in ("context", "features", "categories", "targets"):
        values = event.get(part) or {}
        if name in values:
            return values[name]
    return ""


def _cell(kind: str, row: dict[str, Any]) -> Cell:
    classified = kind == TaskKind.CLASSIFICATION.value
    return Cell(
        row["status"],
        row["label"] if classified and row["label"] is not None else row["prediction"],
        row["actual_label"] if classified and row["actual_label"] is not None else row["actual"],
        row["error"], row["percent_error"], row["model_version"],
    )


def event_rows(spec: StreamSpec, rows: list[dict[str, Any]], window: StreamWindow | None,
               columns: list[str]) -> list[EventRow]:
    """Prediction rows (one per event and task, newest event first) as one row per event."""
    kinds = {task.name: task.kind.value for task in spec.tasks}
    grouped: dict[str, EventRow] = {}
    for row in rows:
        event_id = row["event_id"]
        line = grouped.get(event_id)
        if line is None:
            event = window.event(event_id) if window is not None else None
            line = grouped[event_id] = EventRow(
                event_id, row["key"], row["produced_at"], {name: _value(event, name) for name in columns}, {}
            )
        line.cells[row["task"]] = _cell(kinds.get(row["task"], ""), row)
    return list(grouped.values())


async def live_table(state: GatewayState, runtime: ConsoleRuntime, declared: Declared) -> LiveTable:
    spec = declared.spec
    window = runtime.tail.window(spec.name)
    totalled = list(window.totals) if window is not None else []
    columns = shown_columns(spec, totalled)
    rows = await guarded("predictions", state.settings.dependency_timeout_seconds,
                         predictions.latest(state.pool, spec.name, LIVE_EVENTS, len(spec.tasks)))
    if not isinstance(rows, Outage):
        rows = event_rows(spec, rows, window, columns)
    return LiveTable(columns, [task.name for task in spec.tasks], rows, runtime.reading)


async def task_charts(state: GatewayState, spec: StreamSpec) -> list[TaskChart] | Outage:
    """For every task with a target: prediction against actual and the rolling error per version."""
    charts = []
    for task in spec.tasks:
        if task.target is None or task.kind is TaskKind.CLUSTERING:
            continue
        rows = await guarded("predictions", state.settings.dependency_timeout_seconds,
                             predictions.with_actuals(state.pool, spec.name, task.name, CHART_POINTS))
        if isinstance(rows, Outage):
            return rows
        unit = spec.field(task.target).unit if task.target in spec.field_names else ""
        chart = TaskChart(task.name, task.kind.value, task.target, unit, len(rows))
        if rows:
            versus, rolling = accuracy_charts(task.kind, rows)
            chart = TaskChart(task.name, task.kind.value, task.target, unit, len(rows), versus, rolling)
        charts.append(chart)
    return charts


def summary(state: GatewayState, runtime: ConsoleRuntime, declared: Declared) -> StreamSummary:
    name = declared.spec.name
    window = runtime.tail.window(name)
    return StreamSummary(
        declared,
        runtime.sampler.rate(state.topics.raw(name)),
        window.dead_letter_rate(time.time()) if runtime.reading and window is not None else None,
        list(window.totals.values()) if window is not None else [],
        window.counted if window is not None else 0,
        window.since() if window is not None else None,
        list(reversed(window.dead_letters))[:10] if window is not None else [],
    )
