"""Decode raw messages and check their envelope (everything but ``data``).

One pass per record with orjson; the record's fields are checked later, a
whole stream's batch at a time, by shared.validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from shared.validation import CONTROL_CHARACTERS


@dataclass(slots=True)
class Envelope:
    index: int  # position in the consumed batch
    event_id: str
    data: dict[str, Any]
    source: str
    dataset_id: str | None
    produced_at: str | None


class EnvelopeInvalid(ValueError):
    pass


def decode(index: int, value: bytes | None, stream: str) -> Envelope:
    """The envelope of a raw event on ``stream``'s topic, or EnvelopeInvalid with the reason."""
    if not value:
        raise EnvelopeInvalid("empty message")
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise EnvelopeInvalid(f"invalid JSON: {error}") from None
    if not isinstance(event, dict):
        raise EnvelopeInvalid(f"expected a JSON object, got {_json_type(event)}")
    event_id = event.get("event_id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 64:
        if event_id is None:
            raise EnvelopeInvalid("event_id: missing")
        raise EnvelopeInvalid("event_id: expected a string of 1 to 64 characters")
    _printable("event_id", event_id)
    declared = event.get("stream")
    if declared != stream:
        raise EnvelopeInvalid(f"stream: event is for {declared!r} but arrived on the {stream!r} topic")
    data = event.get("data")
    if not isinstance(data, dict):
        if data is None:
            raise EnvelopeInvalid("data: missing")
        raise EnvelopeInvalid(f"data: expected an object, got {_json_type(data)}")
    source = event.get("source", "generator")
    if not isinstance(source, str) or not source:
        raise EnvelopeInvalid("source: expected a non-empty string")
    _printable("source", source)
    dataset_id = event.get("dataset_id")
    if dataset_id is not None and not isinstance(dataset_id, str):
        raise EnvelopeInvalid("dataset_id: expected a string or null")
    if dataset_id is not None:
        _printable("dataset_id", dataset_id)
    produced_at = event.get("produced_at")
    if produced_at is not None:
        if not isinstance(produced_at, str):
            raise EnvelopeInvalid("produced_at: expected an ISO 8601 string")
        _printable("produced_at", produced_at)
        try:
            datetime.fromisoformat(produced_at)
        except ValueError:
            raise EnvelopeInvalid(f"produced_at: not an ISO 8601 timestamp: {produced_at[:40]!r}") from None
    return Envelope(index, event_id, data, source, dataset_id, produced_at)


def _printable(name: str, text: str) -> None:
    # These strings go into the features event and PostgreSQL's text columns,
    # which refuse a NUL: refused here, with the reason, the event never
    # reaches the consumer to be dead-lettered there after a failed write.
    if CONTROL_CHARACTERS.search(text):
        raise EnvelopeInvalid(f"{name}: contains a control character")


def _json_type(value: object) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )
