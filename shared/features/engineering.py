"""A stream's feature matrix from a validated batch, columns in the order of
``StreamSpec.features``.

A feature is either one of the stream's numeric fields, taken as is, or an
engineered column computed by the stream's engineer (pressure: per-sensor
windows). Which is which comes from the declaration; a feature nobody can
compute is an error when the builder is made, not when data arrives.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from shared.features import pressure
from shared.streams import FieldType, StreamSpec
from shared.validation import BatchValidation


class Engineer(Protocol):
    names: tuple[str, ...]

    def compute(self, batch: BatchValidation, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Engineered columns for ``rows`` (indices of valid records, in order)."""
        ...


class SensorWindowEngineer:
    """Pressure features from per-sensor hourly and 30-day windows."""

    names = pressure.ENGINEERED

    def __init__(self, spec: StreamSpec, value_field: str, max_sensors: int) -> None:
        time_fields = [f.name for f in spec.fields if f.type is FieldType.DATETIME]
        if len(time_fields) != 1:
            raise ValueError(f"stream {spec.name!r} needs exactly one timestamp field for sensor windows")
        if not spec.field(value_field).numeric:
            raise ValueError(f"field {value_field!r} of stream {spec.name!r} is not numeric")
        self.key_field = spec.key_field
        self.time_field = time_fields[0]
        self.value_field = value_field
        self.windows = pressure.PressureWindows(max_sensors)

    def compute(self, batch: BatchValidation, rows: np.ndarray) -> dict[str, np.ndarray]:
        keys = batch.columns[self.key_field]
        times = batch.columns[self.time_field]
        row_list = rows.tolist()
        sensor_ids = [keys[i] for i in row_list]
        hours = pressure.hour_index([times[i] for i in row_list]).tolist()
        values = np.asarray(batch.columns[self.value_field], dtype=np.float64)[rows].tolist()
        return pressure.derived(self.windows.update(sensor_ids, hours, values))


def make_engineer(spec: StreamSpec, *, max_sensors: int) -> Engineer | None:
    if spec.name == "pressure":
        return SensorWindowEngineer(spec, value_field="pressure_mca", max_sensors=max_sensors)
    return None


class FeatureBuilder:
    def __init__(self, spec: StreamSpec, *, max_sensors: int = 2000) -> None:
        self.spec = spec
        self.engineer = make_engineer(spec, max_sensors=max_sensors)
        engineered = set(self.engineer.names) if self.engineer else set()
        numeric = {f.name for f in spec.fields if f.numeric}
        unknown = [name for name in spec.features if name not in engineered and name not in numeric]
        if unknown:
            raise ValueError(f"stream {spec.name!r}: no way to compute features {unknown}")
        self.names = spec.features

    def build(self, batch: BatchValidation, rows: np.ndarray) -> np.ndarray:
        """(len(rows), len(features)) float64 matrix."""
        engineered = self.engineer.compute(batch, rows) if self.engineer and len(rows) else {}
        matrix = np.empty((len(rows), len(self.names)), dtype=np.float64)
        for j, name in enumerate(self.names):
            column = engineered.get(name)
            matrix[:, j] = column if column is not None else np.asarray(batch.columns[name], dtype=np.float64)[rows]
        return matrix
