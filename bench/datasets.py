"""Training matrices from the generator's synthetic streams, built the way
the normalizer builds them (validation, then the stream's feature builder),
without a broker and without encoding a features event per row."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from services.generator.base import Source
from services.generator.settings import GeneratorSettings
from services.generator.simulators import simulate
from shared.features.engineering import FeatureBuilder
from shared.streams import StreamSpec, TaskKind, TaskSpec, builtin_stream, get_stream
from shared.validation import validate_batch

# More sensors than the generator's default of 20, so that a million
# readings do not all come from a handful of windows.
SENSORS = 200


def make_source(stream: str, seed: int) -> Source:
    """The built-in stream's simulator (SimulationInvalid for a stream without one)."""
    return simulate(builtin_stream(stream), GeneratorSettings(generator_seed=seed, generator_sensors=SENSORS))


@dataclass(frozen=True)
class StreamData:
    """Every valid row of a synthetic sample: features (the stream's order) and targets."""

    stream: StreamSpec
    features: np.ndarray  # (rows, len(stream.features)), float64
    targets: dict[str, np.ndarray]  # NaN where a row has no value

    @property
    def rows(self) -> int:
        return int(self.features.shape[0])

    def task(self, task: TaskSpec, rows: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """The first ``rows`` usable rows of ``task``: (X in the task's order, y)."""
        columns = [self.stream.features.index(name) for name in task.features]
        X = self.features[:, columns]
        keep = np.isfinite(X).all(axis=1)
        y = None
        if task.kind is not TaskKind.CLUSTERING:
            assert task.target is not None
            y = self.targets[task.target]
            keep &= np.isfinite(y)
            y = y[keep][:rows]
        return X[keep][:rows], y


def _target_column(column: object, rows: np.ndarray) -> np.ndarray:
    if isinstance(column, np.ndarray):
        return column[rows].astype(np.float64)
    # Booleans (labels) arrive as a list of True/False/None.
    values = [column[i] for i in rows.tolist()]  # type: ignore[index]
    return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)


def synthetic(stream_name: str, rows: int, seed: int = 7, chunk: int = 20_000) -> StreamData:
    """``rows`` generator records of a stream as a feature matrix and targets."""
    stream = get_stream(stream_name)
    source = make_source(stream_name, seed)
    builder = FeatureBuilder(stream, max_sensors=SENSORS * 2)
    parts: list[np.ndarray] = []
    targets: dict[str, list[np.ndarray]] = {name: [] for name in stream.targets}
    left = rows
    while left > 0:
        records = source.next_batch(min(chunk, left))
        left -= len(records)
        batch = validate_batch(stream, records)
        valid = batch.valid_indices
        parts.append(builder.build(batch, valid))
        for name in stream.targets:
            targets[name].append(_target_column(batch.columns[name], valid))
    return StreamData(
        stream,
        np.concatenate(parts) if parts else np.empty((0, len(stream.features))),
        {name: np.concatenate(values) for name, values in targets.items()},
    )
