"""Synthetic rows from the generator's simulators, in the shape of features
events (``features``, ``categories``, ``targets``), built the way the
normalizer builds them: validation (shared.validation), then the stream's
columns (shared.features.columns.StreamColumns), without a broker and
without encoding JSON per row. Models are fitted on them with the trainer's
own functions (shared.ml.dataset.task_data / fit_rows)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from services.generator.base import Source
from services.generator.settings import GeneratorSettings
from services.generator.simulators import simulate
from services.normalizer.encode import FeaturesEncoder, row_dicts
from shared.features.columns import StreamColumns
from shared.ml.dataset import TaskData, task_data
from shared.streams import FieldType, StreamSpec, builtin_stream
from shared.validation import validate_batch

# More sensors than the generator's default of 20, so that a million
# readings do not all come from a handful of windows.
SENSORS = 200
CHUNK = 20_000


def make_source(stream: str, seed: int) -> Source:
    """The built-in stream's simulator (SimulationInvalid for a stream without one)."""
    return simulate(builtin_stream(stream), GeneratorSettings(generator_seed=seed, generator_sensors=SENSORS))


def row_chunks(spec: StreamSpec, records: int, seed: int = 7, chunk: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    """``records`` generator records of ``spec``, the valid ones as
    features-event dicts, ``chunk`` records at a time (one column builder
    throughout, so rolling windows carry on from chunk to chunk)."""
    source = make_source(spec.name, seed)
    columns = StreamColumns(spec, max_keys=SENSORS * 2)
    encoder = FeaturesEncoder(spec, topic="")
    categories = [f.name for f in spec.fields if f.type is FieldType.CATEGORY]
    left = records
    while left > 0:
        take = min(chunk, left)
        left -= take
        batch = validate_batch(spec, source.next_batch(take))
        rows = batch.valid_indices
        if not len(rows):
            continue
        row_list = rows.tolist()
        numbers = columns.compute(batch, rows)
        names = list(numbers)
        features = row_dicts(names, np.column_stack([numbers[n] for n in names]))
        targets = encoder.targets(batch.columns, numbers, row_list)
        labels = [{name: batch.columns[name][i] for name in categories if batch.columns[name][i] is not None}
                  for i in row_list]
        yield [{"features": f, "categories": c, "targets": t} for f, c, t in zip(features, labels, targets, strict=True)]


def synthetic_rows(stream: str, records: int, seed: int = 7) -> list[dict[str, Any]]:
    """Every valid row of ``records`` generator records of a built-in stream."""
    return [row for chunk in row_chunks(builtin_stream(stream), records, seed) for row in chunk]


def task_matrices(spec: StreamSpec, records: int, seed: int = 7) -> dict[str, TaskData]:
    """Each task's matrix (shared.ml.dataset.task_data) over ``records``
    generator records, built a chunk at a time so that a million rows are
    never held as dicts at once. The one-hot columns and classes are those
    of the first chunk (all categories of the built-in streams are closed,
    so their columns do not depend on the rows anyway)."""
    parts: dict[str, list[TaskData]] = {task.name: [] for task in spec.tasks}
    for rows in row_chunks(spec, records, seed):
        for task in spec.tasks:
            first = parts[task.name][0] if parts[task.name] else None
            parts[task.name].append(task_data(spec, task, rows, first.inputs if first else None,
                                              first.classes if first else None))
    return {name: _concatenate(chunks) for name, chunks in parts.items()}


def _concatenate(parts: list[TaskData]) -> TaskData:
    first = parts[0]
    return TaskData(
        X=np.concatenate([part.X for part in parts]),
        y=None if first.y is None else np.concatenate([part.y for part in parts if part.y is not None]),
        inputs=first.inputs,
        dropped=sum(part.dropped for part in parts),
        classes=first.classes,
        positive=first.positive,
    )
