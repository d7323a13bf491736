"""What a prediction request must carry, checked against the stream's bounds.

A task's features are stream fields (with their types and bounds) or
engineered values (any finite number). A single row is checked value by value
in plain Python, which is several times cheaper than the columnar
``shared.validation.validate_batch`` for one record; a batch goes through
``validate_batch`` itself. Both give the same field and reason for the same
input (a unit test holds them to it).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.streams import FieldSpec, FieldType, StreamSpec, TaskSpec
from shared.validation import RecordInvalid, validate_batch


def task_fields(stream: StreamSpec, task: TaskSpec) -> tuple[FieldSpec, ...]:
    """One numeric FieldSpec per task feature; optional features are not required."""
    fields = []
    for name in task.features:
        try:
            spec = stream.field(name)
        except KeyError:
            spec = FieldSpec(name, FieldType.FLOAT, description="engineered feature")
        fields.append(dataclasses.replace(spec, required=name not in task.optional_features))
    return tuple(fields)


def _number(spec: FieldSpec, value: Any) -> float:
    # Same order and wording of reasons as shared.validation._numeric_column.
    if isinstance(value, bool):
        raise RecordInvalid(spec.name, "expected a number, got a boolean")
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # a Python int beyond float range; JSON never decodes to one
            raise RecordInvalid(spec.name, "infinite value") from None
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise RecordInvalid(spec.name, f"expected a number, got {value[:40]!r}") from None
    else:
        raise RecordInvalid(spec.name, f"expected a number, got {type(value).__name__}")
    if math.isnan(number):
        raise RecordInvalid(spec.name, "not a number (NaN)")
    if math.isinf(number):
        raise RecordInvalid(spec.name, "infinite value")
    if spec.minimum is not None and number < spec.minimum:
        raise RecordInvalid(spec.name, f"below minimum {spec.minimum:g}")
    if spec.maximum is not None and number > spec.maximum:
        raise RecordInvalid(spec.name, f"above maximum {spec.maximum:g}")
    if spec.type is FieldType.INT and number != round(number):
        raise RecordInvalid(spec.name, "expected an integer")
    return number


@dataclass(frozen=True)
class RequestSchema:
    """The inputs of one (stream, task): how to read one record or a batch."""

    stream: StreamSpec
    task: TaskSpec
    fields: tuple[FieldSpec, ...]

    @classmethod
    def of(cls, stream: StreamSpec, task: TaskSpec) -> RequestSchema:
        return cls(stream, task, task_fields(stream, task))

    @property
    def _batch_spec(self) -> StreamSpec:
        return dataclasses.replace(self.stream, fields=self.fields)

    def check_one(self, record: Any) -> dict[str, float]:
        """The record's feature values; absent optional features are left out.

        Raises :class:`RecordInvalid` naming the first bad field.
        """
        if not isinstance(record, dict):
            raise RecordInvalid("body", f"expected a JSON object, got {_json_type(record)}")
        values: dict[str, float] = {}
        for spec in self.fields:
            value = record.get(spec.name)
            if value is None:
                if spec.required:
                    raise RecordInvalid(spec.name, "missing")
                continue
            values[spec.name] = _number(spec, value)
        return values

    def check_many(self, records: list[Any]) -> tuple[dict[str, np.ndarray], dict[int, str]]:
        """Columns of feature values (NaN where an optional feature is absent)
        and the reason each invalid record was refused, by index."""
        result = validate_batch(self._batch_spec, records)
        columns = {spec.name: np.asarray(result.columns[spec.name], dtype=np.float64) for spec in self.fields}
        return columns, result.reasons


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__
