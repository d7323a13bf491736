"""Synthetic rows from the generator's simulators, in the shape of features
events (``features``, ``categories``, ``targets``), built the way the
normalizer builds them: validation (shared.validation), then the stream's
columns (shared.features.columns.StreamColumns), without a broker and
without encoding JSON per row. Models are fitted on them with the trainer's
own functions (shared.ml.dataset.task_data / fit_rows)."""

from __future__ import annotations

import time
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


class Synthetic:
    """A stream's generator records, the valid ones as features-event dicts.

    One source and one column builder throughout, so successive calls
    continue one sequence (rolling windows carry on): the first N records
    are the same however they are asked for.
    """

    def __init__(self, spec: StreamSpec, seed: int = 7) -> None:
        self.spec = spec
        self.source = make_source(spec.name, seed)
        self.columns = StreamColumns(spec, max_keys=SENSORS * 2)
        self.encoder = FeaturesEncoder(spec, topic="")
        self.categories = [f.name for f in spec.fields if f.type is FieldType.CATEGORY]
        self.records = 0  # drawn so far, valid or not

    def rows(self, records: int) -> list[dict[str, Any]]:
        """The valid rows among the next ``records`` records (callers draw ``CHUNK`` at most at a time)."""
        batch = validate_batch(self.spec, self.source.next_batch(records))
        self.records += records
        rows = batch.valid_indices
        if not len(rows):
            return []
        row_list = rows.tolist()
        numbers = self.columns.compute(batch, rows)
        names = list(numbers)
        features = row_dicts(names, np.column_stack([numbers[n] for n in names]))
        targets = self.encoder.targets(batch.columns, numbers, row_list)
        columns = batch.columns
        labels = [{name: columns[name][i] for name in self.categories if columns[name][i] is not None} for i in row_list]
        return [{"features": f, "categories": c, "targets": t} for f, c, t in zip(features, labels, targets, strict=True)]


def synthetic_rows(stream: str, records: int, seed: int = 7) -> list[dict[str, Any]]:
    """Every valid row of ``records`` generator records of a built-in stream."""
    source = Synthetic(builtin_stream(stream), seed)
    rows: list[dict[str, Any]] = []
    while source.records < records:
        rows.extend(source.rows(min(CHUNK, records - source.records)))
    return rows


class TaskSample:
    """Each task's matrix (shared.ml.dataset.task_data) over a stream's first
    N generator records, grown as N grows: a chunk of rows at a time, so a
    million rows are never held as dicts at once, and the rows of a smaller
    size are not generated again for a larger one.

    The one-hot columns and classes are those of the first chunk (every
    category of the built-in streams is closed, so their columns do not
    depend on the rows anyway).
    """

    def __init__(self, spec: StreamSpec, seed: int = 7) -> None:
        self.spec = spec
        self.synthetic = Synthetic(spec, seed)
        self.seconds = 0.0  # spent generating so far
        self._parts: dict[str, list[TaskData]] = {task.name: [] for task in spec.tasks}
        self._whole: dict[str, TaskData] = {}

    @property
    def records(self) -> int:
        return self.synthetic.records

    def projected_seconds(self, records: int) -> float | None:
        """Seconds to grow to ``records``, at the rate so far (None before any)."""
        if not self.records:
            return None
        return max(records - self.records, 0) * self.seconds / self.records

    def grow(self, records: int) -> float:
        """Generate up to ``records`` records; returns the seconds it took."""
        began = time.perf_counter()
        while self.records < records:
            rows = self.synthetic.rows(min(CHUNK, records - self.records))
            for task in self.spec.tasks:
                parts = self._parts[task.name]
                first = parts[0] if parts else None
                parts.append(task_data(self.spec, task, rows, first.inputs if first else None,
                                       first.classes if first else None))
            self._whole.clear()
        took = time.perf_counter() - began
        self.seconds += took
        return took

    def data(self, task: str) -> TaskData:
        whole = self._whole.get(task)
        if whole is None:
            whole = self._whole[task] = _concatenate(self._parts[task])
            self._parts[task] = [whole]  # one copy of the rows, not two
        return whole


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
