"""The training form: what a task allows, and the form's values as a train request."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from shared.streams import Algorithm, StreamSpec, TaskSpec

MLP = Algorithm.MLP.value


@dataclass(frozen=True)
class TrainForm:
    spec: StreamSpec
    task: TaskSpec
    algorithms: list[str]
    default_algorithm: str
    datasets: list[dict[str, Any]]
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class FormInvalid(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in errors.items()))
        self.errors = errors


async def datasets(db: asyncpg.Pool, stream: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    rows = await db.fetch(
        """SELECT id, stream, filename, rows_total, rows_accepted, rows_rejected, created_at FROM datasets
           WHERE ($1::text IS NULL OR stream = $1) ORDER BY created_at DESC, id LIMIT $2""",
        stream, limit,
    )
    return [dict(row) for row in rows]


def _integer(form: Mapping[str, str], name: str, errors: dict[str, str]) -> int | None:
    text = form.get(name, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        errors[name] = f"a whole number, not {text[:20]!r}"
        return None


def _layers(text: str, errors: dict[str, str]) -> list[int] | None:
    parts = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    if not parts:
        return None
    try:
        return [int(part) for part in parts]
    except ValueError:
        errors["hidden_layer_sizes"] = "layer sizes separated by commas, e.g. 64, 32"
        return None


def train_request(spec: StreamSpec, task: TaskSpec, form: Mapping[str, str]) -> dict[str, Any]:
    """The POST /train body the form describes; raises FormInvalid naming each bad input.

    The MLP's layers, epochs and batch size have inputs of their own; any
    other hyperparameter goes in the JSON object of ``other``.
    """
    errors: dict[str, str] = {}
    algorithm = form.get("algorithm", "").strip() or None
    hyperparameters: dict[str, Any] = {}
    other = form.get("other", "").strip()
    if other:
        try:
            parsed = json.loads(other)
        except ValueError as error:
            errors["other"] = f"not JSON: {error}"
        else:
            if isinstance(parsed, dict):
                hyperparameters.update(parsed)
            else:
                errors["other"] = "a JSON object, e.g. {\"n_estimators\": 200}"
    if (algorithm or task.default.value) == MLP:
        layers = _layers(form.get("hidden_layer_sizes", ""), errors)
        if layers is not None:
            hyperparameters["hidden_layer_sizes"] = layers
        for name in ("epochs", "batch_size"):
            value = _integer(form, name, errors)
            if value is not None:
                hyperparameters[name] = value
    body: dict[str, Any] = {"stream": spec.name, "task": task.name, "algorithm": algorithm,
                            "hyperparameters": hyperparameters, "force": form.get("force") == "on"}
    source = form.get("dataset_id", "").strip()
    if source:
        body["dataset_id"] = source
    window = _integer(form, "window", errors)
    if window is not None:
        body["window"] = window
    if errors:
        raise FormInvalid(errors)
    return body
