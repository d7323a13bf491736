"""What a model reads and predicts, recorded in its bundle so that training
and serving build exactly the same matrix.

A task's features are numeric columns (taken as they are) or category
fields, one-hot encoded: one column per known value plus an ``other``
column for any value the model did not learn. Closed categories use their
declared values; open ones the declared values and then the most frequent
values of the training rows, up to the field's ``max_categories``. The
resulting list is fixed at training time and stored in the bundle
(``BundleMeta.inputs``), so a model never depends on how a stream's
declaration evolves afterwards.

Classification targets become class indices; the class labels (the user's
own values, as text: ``"true"``, ``"3"``, ``"gold"``) are stored with the
model and given back in answers.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from shared.streams.declaration import FieldType, StreamSpec, TaskSpec

OTHER = "<other>"


class InputColumn(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    kind: Literal["number", "category"] = "number"
    values: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return 1 if self.kind == "number" else len(self.values) + 1

    def column_names(self) -> list[str]:
        if self.kind == "number":
            return [self.name]
        return [f"{self.name}={value}" for value in self.values] + [f"{self.name}={OTHER}"]


def input_columns(spec: StreamSpec, task: TaskSpec, rows: Sequence[Mapping[str, Any]] = ()) -> list[InputColumn]:
    """The task's inputs; open categories learn their values from ``rows``
    (features events as dicts)."""
    columns = []
    for name in task.features:
        if spec.columns.get(name) != "category":
            columns.append(InputColumn(name=name))
            continue
        field = spec.field(name)
        values = list(field.categories or ())
        if field.open:
            seen = Counter(row.get("categories", {}).get(name) for row in rows)
            seen.pop(None, None)
            for value, _ in seen.most_common():
                if len(values) >= field.max_categories:
                    break
                if value not in values:
                    values.append(value)
        columns.append(InputColumn(name=name, kind="category", values=tuple(values)))
    return columns


def feature_names(inputs: Sequence[InputColumn]) -> list[str]:
    return [name for column in inputs for name in column.column_names()]


def _numbers(rows: Sequence[Mapping[str, Any]], part: str, name: str) -> np.ndarray:
    values = [(row.get(part) or {}).get(name) for row in rows]
    try:
        return np.array(values, dtype=np.float64)  # the common case: numbers and None
    except (TypeError, ValueError):
        return np.array(
            [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else np.nan for v in values],
            dtype=np.float64,
        )


def event_inputs(rows: Sequence[Mapping[str, Any]], inputs: Sequence[InputColumn]) -> dict[str, Any]:
    """Features events (dicts) as input columns: numbers as float64 arrays
    (NaN where absent), categories as lists (None where absent)."""
    out: dict[str, Any] = {}
    for column in inputs:
        if column.kind == "number":
            out[column.name] = _numbers(rows, "features", column.name)
        else:
            out[column.name] = [(row.get("categories") or {}).get(column.name) for row in rows]
    return out


def build_matrix(inputs: Sequence[InputColumn], values: Mapping[str, Any], n: int) -> np.ndarray:
    """(n, total width) float64: numbers as given (NaN where absent), each
    category as one-hot columns (an absent category is NaN across its
    columns, so the row counts as incomplete)."""
    width = sum(column.width for column in inputs)
    matrix = np.zeros((n, width), dtype=np.float64)
    at = 0
    for column in inputs:
        given = values.get(column.name)
        if column.kind == "number":
            matrix[:, at] = np.nan if given is None else np.asarray(given, dtype=np.float64)
        else:
            index = {value: j for j, value in enumerate(column.values)}
            other = len(column.values)
            block = matrix[:, at : at + column.width]
            for i, value in enumerate(given if given is not None else [None] * n):
                if value is None:
                    block[i, :] = np.nan
                else:
                    block[i, index.get(value, other)] = 1.0
        at += column.width
    return matrix


def complete_rows(matrix: np.ndarray) -> np.ndarray:
    return np.isfinite(matrix).all(axis=1)


# -- classification labels ----------------------------------------------------

def label_text(value: Any, kind: FieldType) -> str | None:
    """A target value as its class label (booleans as "true"/"false", whole numbers without ".0")."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if kind is FieldType.BOOL:
        if isinstance(value, str):
            return value.strip().lower() if value.strip().lower() in ("true", "false") else None
        return "true" if float(value) == 1.0 else "false" if float(value) == 0.0 else None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def target_labels(spec: StreamSpec, task: TaskSpec, rows: Sequence[Mapping[str, Any]]) -> list[str | None]:
    assert task.target is not None
    kind = spec.field(task.target).type
    return [label_text((row.get("targets") or {}).get(task.target), kind) for row in rows]


def class_order(spec: StreamSpec, task: TaskSpec, labels: Sequence[str | None]) -> list[str]:
    """The classes a model predicts, in index order: declared categories
    first (in their order), then the other labels seen, sorted (numbers by value)."""
    assert task.target is not None
    field = spec.field(task.target)
    seen = {label for label in labels if label is not None}
    if field.type is FieldType.BOOL:
        return ["false", "true"]
    declared = [value for value in (field.categories or ()) if value in seen]
    rest = seen - set(declared)
    if field.type is FieldType.INT:
        return declared + sorted(rest, key=lambda v: float(v))
    return declared + sorted(rest)


def positive_index(task: TaskSpec, classes: Sequence[str]) -> int | None:
    """The positive class of a binary task (declared, else the second class)."""
    if len(classes) != 2:
        return None
    if task.positive_class is not None and task.positive_class in classes:
        return list(classes).index(task.positive_class)
    return 1


def encode_labels(labels: Sequence[str | None], classes: Sequence[str]) -> np.ndarray:
    """Class indices as float64; NaN for a missing label or one the model does not know."""
    index = {label: float(i) for i, label in enumerate(classes)}
    return np.array([np.nan if label is None else index.get(label, np.nan) for label in labels], dtype=np.float64)
