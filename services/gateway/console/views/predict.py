"""The hand-prediction form, generated from a task's declared inputs: bounds
become input limits, categories become choices."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.gateway.errors import ApiError
from shared.streams import FieldSpec, FieldType, TaskSpec

NUMBER, CHOICE, TEXT, DATETIME, BOOLEAN = "number", "choice", "text", "datetime", "boolean"


@dataclass(frozen=True)
class FormField:
    name: str
    kind: str
    required: bool
    description: str = ""
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    step: str = "any"
    max_length: int | None = None
    options: tuple[str, ...] = ()
    open_choice: bool = False  # any value allowed; the options are suggestions
    value: str = ""
    error: str | None = None


def _kind(spec: FieldSpec) -> str:
    if spec.numeric:
        return NUMBER
    return {FieldType.CATEGORY: CHOICE, FieldType.BOOL: BOOLEAN, FieldType.DATETIME: DATETIME}.get(spec.type, TEXT)


def as_input_value(spec: FieldSpec, value: Any) -> str:
    """A request value as an <input> holds it (datetime-local has no zone: UTC is meant)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if spec.type is FieldType.DATETIME and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        return moment.isoformat(timespec="seconds")
    return str(value)


def form_fields(
    fields: tuple[FieldSpec, ...], values: Mapping[str, str], errors: Mapping[str, str] | None = None
) -> list[FormField]:
    errors = errors or {}
    out = []
    for spec in fields:
        out.append(FormField(
            name=spec.name,
            kind=_kind(spec),
            required=spec.required,
            description=spec.description,
            unit=spec.unit,
            minimum=spec.minimum if spec.numeric else None,
            maximum=spec.maximum if spec.numeric else None,
            step="1" if spec.type is FieldType.INT else "any",
            max_length=spec.max_length if spec.type is FieldType.STR else None,
            options=tuple(spec.categories or ()),
            open_choice=spec.open,
            value=values.get(spec.name, ""),
            error=errors.get(spec.name),
        ))
    return out


def example_values(task: TaskSpec, fields: tuple[FieldSpec, ...]) -> dict[str, str]:
    """The task's first declared example, as form values (empty when it has none)."""
    if not task.examples:
        return {}
    example = task.examples[0]
    return {spec.name: as_input_value(spec, example[spec.name]) for spec in fields if spec.name in example}


def record_from_form(fields: tuple[FieldSpec, ...], form: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(the request record, the form's values as given). Empty inputs are left
    out of the record, so an optional input is simply absent; the values stay
    text, which the API reads as it reads a JSON body's numeric strings."""
    given: dict[str, str] = {}
    record: dict[str, Any] = {}
    for spec in fields:
        raw = form.get(spec.name)
        text = raw.strip() if isinstance(raw, str) else ""
        given[spec.name] = text
        if text:
            record[spec.name] = text
    return record, given


@dataclass(frozen=True)
class Refusal:
    """Why the gateway refused the record: per field when it says which, else overall."""

    message: str
    by_field: dict[str, str] = field(default_factory=dict)


def refusal(error: ApiError, fields: tuple[FieldSpec, ...]) -> Refusal:
    names = {spec.name for spec in fields}
    by_field = {e["field"]: e["reason"] for e in error.errors if e.get("field") in names}
    return Refusal(error.detail, by_field)


@dataclass(frozen=True)
class Answer:
    stream: str
    task: str
    kind: str
    model_id: int
    model_version: int
    prediction: Any
    label: str | None
    score: float | None
    probabilities: list[tuple[str, float]]


def answer(stream: str, task: TaskSpec, model_id: int, model_version: int, row: dict[str, Any]) -> Answer:
    probabilities = sorted((row.get("probabilities") or {}).items(), key=lambda item: -item[1])
    return Answer(stream, task.name, task.kind.value, model_id, model_version, row["prediction"],
                  row.get("label"), row.get("score"), probabilities)
