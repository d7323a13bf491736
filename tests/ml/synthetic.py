"""Learnable synthetic rows for any stream, built from its declaration.

Features form three blobs (so clustering has structure); each regression
target is a fixed linear function of its task's features plus a little
noise; each classification target marks the top ``anomaly_rate`` of a linear
score. Column names come from the StreamSpec only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from shared.events import FeaturesEvent
from shared.streams import FieldType, StreamSpec, TaskKind

DEFAULT_RANGE = (0.0, 100.0)


def _bounds(stream: StreamSpec, name: str) -> tuple[float, float]:
    try:
        spec = stream.field(name)
    except KeyError:
        return DEFAULT_RANGE
    low = spec.minimum if spec.minimum is not None else DEFAULT_RANGE[0]
    high = spec.maximum if spec.maximum is not None else DEFAULT_RANGE[1]
    # Huge declared ranges (income up to ten million) would make every
    # value look alike; keep to a realistic slice of them.
    return low, min(high, low + 100_000.0) if high - low > 1_000_000 else high


def synthetic_rows(
    stream: StreamSpec, n: int, seed: int = 0, *, anomaly_rate: float = 0.15, integer_features: bool = False
) -> list[dict[str, Any]]:
    """``n`` dicts shaped like features events: ``{"features": ..., "targets": ...}``."""
    rng = np.random.default_rng(seed)
    # Fixed structure (blob centres, weights) regardless of seed, so two
    # samples with different seeds come from one distribution.
    structure = np.random.default_rng(12345)
    names = list(stream.scaled_features)
    columns: dict[str, np.ndarray] = {}
    categories: dict[str, list[str]] = {}
    blob = rng.integers(0, 3, n)
    for task in stream.tasks:
        for name in task.features:
            if stream.columns.get(name) == "category" and name not in categories:
                # A category follows the blob most of the time: it carries signal.
                values = list(stream.field(name).categories or ("a", "b", "c"))
                picks = np.where(rng.random(n) < 0.8, blob % len(values), rng.integers(0, len(values), n))
                categories[name] = [values[i] for i in picks.tolist()]
    for name in names:
        low, high = _bounds(stream, name)
        span = high - low
        centres = structure.uniform(low + 0.15 * span, high - 0.15 * span, 3)
        values = np.clip(centres[blob] + rng.normal(0.0, 0.04 * span, n), low, high)
        columns[name] = np.round(values) if integer_features else values
    targets: dict[str, np.ndarray] = {}
    for task in stream.tasks:
        if task.target is None:
            continue
        parts = []
        for f in task.features:
            if f in categories:
                values = list(stream.field(f).categories or ("a", "b", "c"))
                parts.append(np.array([values.index(v) / max(len(values) - 1, 1) for v in categories[f]]))
            else:
                parts.append((columns[f] - _bounds(stream, f)[0]) / np.ptp(_bounds(stream, f)))
        normalised = np.column_stack(parts)
        weights = structure.uniform(0.5, 2.0, len(task.features))
        signal = normalised @ weights
        if task.kind is TaskKind.REGRESSION:
            low, high = _bounds(stream, task.target)
            scaled = low + (high - low) * (0.1 + 0.8 * signal / weights.sum())
            value = np.clip(scaled + rng.normal(0.0, 0.01 * (high - low), n), low, high)
            targets[task.target] = value
            if task.target in columns:
                columns[task.target] = value
        else:
            noisy = signal + rng.normal(0.0, 0.02, n)
            targets[task.target] = (noisy > np.quantile(noisy, 1.0 - anomaly_rate)).astype(float)
    return [
        {
            "features": {name: float(columns[name][i]) for name in names},
            "categories": {name: values[i] for name, values in categories.items()},
            "targets": {name: float(values[i]) for name, values in targets.items()},
        }
        for i in range(n)
    ]


def _context_value(stream: StreamSpec, name: str, i: int, rng: np.random.Generator) -> Any:
    spec = stream.field(name)
    if name == stream.key:
        return f"{name}-{i % 17}"
    if spec.type is FieldType.DATETIME:
        return (datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=i)).isoformat()
    if spec.numeric:
        low = spec.minimum if spec.minimum is not None else 0.0
        high = spec.maximum if spec.maximum is not None else 100.0
        value = float(rng.uniform(low, high))
        return round(value) if spec.type is FieldType.INT else value
    if spec.type is FieldType.BOOL:
        return False
    return f"{name}-{i % 5}"


def features_events(
    stream: StreamSpec, n: int, seed: int = 0, *, dataset_id: str | None = None, source: str = "test"
) -> list[FeaturesEvent]:
    """Complete FeaturesEvents (ids, keys, context) for producing in tests."""
    rng = np.random.default_rng(seed + 1)
    events = []
    for i, row in enumerate(synthetic_rows(stream, n, seed)):
        context = {name: _context_value(stream, name, i, rng) for name in stream.context}
        key = str(context.get(stream.key) or f"{stream.key}-{i % 17}")
        # As the normalizer does: every numeric field is a feature too.
        numbers = {name: float(value) for name, value in context.items()
                   if stream.columns.get(name) == "number" and isinstance(value, int | float)}
        events.append(
            FeaturesEvent(
                stream=stream.name,
                key=key,
                features={**numbers, **row["features"]},
                categories=row["categories"],
                scaled=row["features"],
                scaler_version=1,
                targets=row["targets"],
                context=context,
                source=source,
                dataset_id=dataset_id,
            )
        )
    return events
