"""What a prediction request must carry for a task, and the model inputs it makes.

A request carries the *raw* inputs of a task's features: stream fields
(checked against their declared types, bounds and categories) and rolling
statistics (any finite number: they need a key's history, which only the
normalizer has). Time parts and derived fields are computed from them by
the same code the normalizer runs (shared.features.columns), so a request
and a streamed event become the same matrix. Inputs that only optional
features need are optional.

A task whose features are all numeric fields (the energy task of the
original API) is checked value by value in plain Python, several times
cheaper than the columnar path for one record; both give the same field and
reason for the same input (a unit test holds them to it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.expressions import parse
from shared.features.columns import StreamColumns
from shared.streams import FieldSpec, FieldType, StreamSpec, TaskSpec
from shared.validation import RecordInvalid, validate_batch


def _roots(spec: StreamSpec, name: str, seen: set[str]) -> set[str]:
    """The request inputs a column is computed from."""
    if name in seen:
        return set()
    seen.add(name)
    if name in spec.field_names or any(r.name == name for r in spec.rolling):
        return {name}
    for parts in spec.time_parts:
        if any(parts.column(part) == name for part in parts.parts):
            return {parts.field}
    for derived in spec.derived:
        if derived.name == name:
            expression = parse(derived.expression)
            found = set(expression.lookup_columns())
            for used in expression.names():
                if used not in spec.constants:
                    found |= _roots(spec, used, seen)
            return found
    return set()


def request_fields(spec: StreamSpec, task: TaskSpec) -> tuple[FieldSpec, ...]:
    """One FieldSpec per request input, in the order the task's features name them."""
    required: dict[str, bool] = {}
    for feature in task.features:
        needed = feature not in task.optional_features
        for root in sorted(_roots(spec, feature, set())):
            required[root] = required.get(root, False) or needed
    fields = []
    for name, is_required in required.items():
        if name in spec.field_names:
            fields.append(spec.field(name).model_copy(update={"required": is_required}))
        else:
            fields.append(FieldSpec(name=name, type=FieldType.FLOAT, required=is_required,
                                    description="rolling statistic: any finite number"))
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
    columns: StreamColumns

    @classmethod
    def of(cls, stream: StreamSpec, task: TaskSpec) -> RequestSchema:
        return cls(stream, task, request_fields(stream, task), StreamColumns(stream, rolling_given=True))

    @property
    def direct(self) -> bool:
        """Every input is a numeric field the task reads as it is."""
        return all(f.numeric for f in self.fields) and {f.name for f in self.fields} == set(self.task.features)

    def check_one(self, record: Any) -> dict[str, float]:
        """A direct task's record as feature values; absent optional ones are
        left out. Raises :class:`RecordInvalid` naming the first bad field."""
        if not isinstance(record, dict):
            raise RecordInvalid("body", f"expected a JSON object, got {json_type(record)}")
        values: dict[str, float] = {}
        for spec in self.fields:
            value = record.get(spec.name)
            if value is None:
                if spec.required:
                    raise RecordInvalid(spec.name, "missing")
                continue
            values[spec.name] = _number(spec, value)
        return values

    def check_many(self, records: list[Any]) -> tuple[dict[str, Any], dict[int, str]]:
        """The model inputs of valid records (numbers as float arrays with NaN
        where absent, categories as lists) and, by index, why each invalid
        record was refused. Inputs cover every record; invalid rows hold NaN."""
        result = validate_batch(self.fields, records)
        rows = np.arange(len(records))
        given = {spec.name: np.asarray(result.columns[spec.name], dtype=np.float64)
                 for spec in self.fields if spec.name not in self.stream.field_names}
        values: dict[str, Any] = dict(self.columns.compute(result, rows, given=given))
        for spec in self.fields:
            if spec.type is FieldType.CATEGORY:
                values[spec.name] = list(result.columns[spec.name])
        return values, result.reasons


def json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__
