"""Deliberately invalid raw events, for demos and tests of the dead-letter path.

Each corruption breaks one thing the normalizer checks, so every one of them
must come back as a dead letter with a reason naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from shared.streams import StreamSpec

Corruption = Callable[[dict[str, Any], StreamSpec, np.random.Generator], bytes]


def _bounded(spec: StreamSpec) -> list[str]:
    return [
        f.name
        for f in spec.fields
        if f.numeric and f.required and (f.minimum is not None or f.maximum is not None)
    ]


def _pick(names: list[str], rng: np.random.Generator) -> str:
    return names[int(rng.integers(0, len(names)))]


def _with(event: dict[str, Any], field: str, value: Any) -> bytes:
    data = dict(event["data"])
    data[field] = value
    return orjson.dumps({**event, "data": data})


def out_of_bounds(event: dict[str, Any], spec: StreamSpec, rng: np.random.Generator) -> bytes:
    field = spec.field(_pick(_bounded(spec), rng))
    value = field.maximum * 10 + 1 if field.maximum is not None else field.minimum - 1000  # type: ignore[operator]
    return _with(event, field.name, value)


def nan_string(event: dict[str, Any], spec: StreamSpec, rng: np.random.Generator) -> bytes:
    # JSON has no NaN; this is how one usually sneaks in (a CSV export, a string).
    return _with(event, _pick(_bounded(spec), rng), "NaN")


def infinity(event: dict[str, Any], spec: StreamSpec, rng: np.random.Generator) -> bytes:
    return _with(event, _pick(_bounded(spec), rng), "Infinity")


def wrong_type(event: dict[str, Any], spec: StreamSpec, rng: np.random.Generator) -> bytes:
    return _with(event, _pick(_bounded(spec), rng), "not-a-number")


def missing_field(event: dict[str, Any], spec: StreamSpec, rng: np.random.Generator) -> bytes:
    name = _pick([f.name for f in spec.fields if f.required], rng)
    data = {k: v for k, v in event["data"].items() if k != name}
    return orjson.dumps({**event, "data": data})


def invalid_json(event: dict[str, Any], spec: StreamSpec, rng: np.random.Generator) -> bytes:
    encoded = orjson.dumps(event)
    return encoded[: len(encoded) // 2]


def not_an_object(event: dict[str, Any], spec: StreamSpec, rng: np.random.Generator) -> bytes:
    return orjson.dumps([event["event_id"], event["data"]])


CORRUPTIONS: dict[str, Corruption] = {
    "out_of_bounds": out_of_bounds,
    "nan": nan_string,
    "infinity": infinity,
    "wrong_type": wrong_type,
    "missing_field": missing_field,
    "invalid_json": invalid_json,
    "not_an_object": not_an_object,
}
KINDS = tuple(CORRUPTIONS)


def corrupt(event: dict[str, Any], spec: StreamSpec, rng: np.random.Generator) -> tuple[str, bytes]:
    """One randomly chosen corruption of ``event``: (its kind, the message bytes)."""
    kind = KINDS[int(rng.integers(0, len(KINDS)))]
    return kind, CORRUPTIONS[kind](event, spec, rng)
