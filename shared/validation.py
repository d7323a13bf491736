"""Validate records against a stream's declaration, a whole batch at a time.

Columns are checked with numpy (missing, wrong type, NaN, infinity, out of
bounds) so a batch of thousands costs a few array operations per field; only
values that are not already numbers fall back to a per-value conversion.
Each rejected row gets the first reason found, naming the field.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from collections.abc import Sequence
from typing import Any

import numpy as np

from shared.streams import FieldSpec, FieldType, StreamSpec

_MISSING = object()
# PostgreSQL text cannot hold NUL, and no name or label needs a control character.
# NUL and the other C0 control characters but tab and newline, and DEL:
# PostgreSQL's text refuses NUL, and none of them belongs in a field.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_CONTROL = CONTROL_CHARACTERS


@dataclass
class BatchValidation:
    """Valid rows (indices into the input) and the cleaned values of every field."""

    valid: np.ndarray  # bool mask over the input rows
    reasons: dict[int, str] = field(default_factory=dict)
    columns: dict[str, np.ndarray | list[Any]] = field(default_factory=dict)

    @property
    def valid_indices(self) -> np.ndarray:
        return np.flatnonzero(self.valid)

    def row(self, index: int) -> dict[str, Any]:
        """The cleaned record at ``index`` (must be valid); absent optional fields are omitted."""
        out: dict[str, Any] = {}
        for name, column in self.columns.items():
            value = column[index]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            out[name] = value.item() if isinstance(value, np.generic) else value
        return out


class RecordInvalid(ValueError):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


def _to_float(value: Any) -> float | str:
    """A float, or the reason the value is not one."""
    if isinstance(value, bool):
        return "expected a number, got a boolean"
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return f"expected a number, got {value[:40]!r}"
    return f"expected a number, got {type(value).__name__}"


def _numeric_column(spec: FieldSpec, values: list[Any], reasons: list[str | None]) -> np.ndarray:
    # Plain ints and floats (the common case) go to numpy in one call; only
    # the other values (absent, text, booleans...) are looked at one by one,
    # so one bad value does not send its whole column down a slow path.
    odd = [i for i, v in enumerate(values) if type(v) is not float and type(v) is not int]
    present = np.ones(len(values), dtype=bool)
    if not odd:
        column = np.asarray(values, dtype=np.float64)
    else:
        plain = list(values)
        for i in odd:
            plain[i] = math.nan
        column = np.asarray(plain, dtype=np.float64)
        for i in odd:
            value = values[i]
            if value is _MISSING or value is None:
                present[i] = False
                continue
            if isinstance(value, np.integer | np.floating):  # e.g. from a pandas frame
                column[i] = float(value)
                continue
            converted = _to_float(value)
            if isinstance(converted, str):
                if reasons[i] is None:
                    reasons[i] = f"{spec.name}: {converted}"
            else:
                column[i] = converted
    nan = np.isnan(column) & present
    _flag(reasons, nan, f"{spec.name}: not a number (NaN)")
    inf = np.isinf(column)
    _flag(reasons, inf, f"{spec.name}: infinite value")
    finite = np.isfinite(column)
    if spec.minimum is not None:
        _flag(reasons, finite & (column < spec.minimum), f"{spec.name}: below minimum {spec.minimum:g}")
    if spec.maximum is not None:
        _flag(reasons, finite & (column > spec.maximum), f"{spec.name}: above maximum {spec.maximum:g}")
    if spec.type is FieldType.INT:
        _flag(reasons, finite & (column != np.round(column)), f"{spec.name}: expected an integer")
    if not spec.required:
        return column
    _flag(reasons, ~present, f"{spec.name}: missing")
    return column


def _flag(reasons: list[str | None], mask: np.ndarray, reason: str) -> None:
    for i in np.flatnonzero(mask):
        if reasons[i] is None:
            reasons[i] = reason


def _parse_datetime(value: Any) -> datetime | str:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return f"expected an ISO 8601 timestamp, got {value[:40]!r}"
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        parsed = datetime.fromtimestamp(value, UTC)
    else:
        return f"expected an ISO 8601 timestamp, got {type(value).__name__}"
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_bool(value: Any) -> bool | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0", "yes", "no"}:
        return value.strip().lower() in {"true", "1", "yes"}
    return f"expected true or false, got {str(value)[:40]!r}"


def _text(spec: FieldSpec, value: Any) -> str | None:
    """The cleaned text of a str or category value, or None with the reason set aside."""
    text = value.strip()
    if not text or len(text) > spec.max_length or _CONTROL.search(text):
        return None
    if spec.type is FieldType.CATEGORY and not spec.open and text not in spec.category_set:
        return None
    return text


def _text_problem(spec: FieldSpec, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return f"expected a string, got {type(value).__name__}"
    text = str(value).strip()
    if not text:
        return "empty string"
    if len(text) > spec.max_length:
        return f"longer than {spec.max_length} characters"
    if _CONTROL.search(text):
        return "contains a control character"
    shown = ", ".join(repr(c) for c in (spec.categories or ())[:10])
    more = ", ..." if len(spec.categories or ()) > 10 else ""
    return f"{text[:40]!r} is not one of the categories ({shown}{more})"


def _object_column(spec: FieldSpec, values: list[Any], reasons: list[str | None]) -> list[Any]:
    column: list[Any] = [None] * len(values)
    textual = spec.type in (FieldType.STR, FieldType.CATEGORY)
    for i, value in enumerate(values):
        if textual and type(value) is str:
            # The common case, cheaply; anything else takes the checks below.
            text = _text(spec, value)
            if text is not None:
                column[i] = text
                continue
        if value is _MISSING or value is None or (isinstance(value, float) and math.isnan(value)):
            if spec.required and reasons[i] is None:
                reasons[i] = f"{spec.name}: missing"
            continue
        if textual:
            if isinstance(value, int) and not isinstance(value, bool):
                text = _text(spec, str(value))
                if text is not None:
                    column[i] = text
                    continue
            converted: Any = _text_problem(spec, value)
        elif spec.type is FieldType.DATETIME:
            converted = _parse_datetime(value)
        else:
            converted = _parse_bool(value)
        if isinstance(converted, str):
            if reasons[i] is None:
                reasons[i] = f"{spec.name}: {converted}"
        else:
            column[i] = converted
    return column


def validate_batch(stream: StreamSpec | Sequence[FieldSpec], records: list[Any]) -> BatchValidation:
    """Check every record of a batch against ``stream``'s fields (or a list of fields)."""
    fields = stream.fields if isinstance(stream, StreamSpec) else stream
    count = len(records)
    reasons: list[str | None] = [None] * count
    rows: list[dict[str, Any]] = []
    for i, record in enumerate(records):
        if isinstance(record, dict):
            rows.append(record)
        else:
            reasons[i] = f"record: expected an object, got {type(record).__name__}"
            rows.append({})
    columns: dict[str, np.ndarray | list[Any]] = {}
    for spec in fields:
        values = [row.get(spec.name, _MISSING) for row in rows]
        if spec.numeric:
            columns[spec.name] = _numeric_column(spec, values, reasons)
        else:
            columns[spec.name] = _object_column(spec, values, reasons)
    valid = np.fromiter((reason is None for reason in reasons), bool, count)
    return BatchValidation(
        valid=valid,
        reasons={i: reason for i, reason in enumerate(reasons) if reason is not None},
        columns=columns,
    )


def validate_record(stream: StreamSpec, record: Any) -> dict[str, Any]:
    """One record, cleaned; raises :class:`RecordInvalid` naming the field."""
    result = validate_batch(stream, [record])
    if not result.valid[0]:
        field_name, _, reason = result.reasons[0].partition(": ")
        raise RecordInvalid(field_name, reason)
    return result.row(0)
