"""Records to RawEvent messages: validate a batch, encode the good records.

Used by uploads (a chunk of file rows) and by POST /v1/streams/{name}/events.
Encoded with orjson from plain dicts (the hot path of a large upload);
shared.events.RawEvent stays the schema, and a unit test parses this output
with it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from services.gateway.idempotency import row_event_id
from services.gateway.upload.csvfile import Row
from shared.events import SCHEMA_VERSION
from shared.streams import StreamSpec
from shared.validation import validate_batch

UPLOAD = "upload"
API = "api"


@dataclass(frozen=True)
class RowProblem:
    row: int
    field: str
    reason: str


@dataclass
class EncodedChunk:
    messages: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, value)
    rejected: list[RowProblem] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)


def raw_event(stream: str, key: str, data: dict[str, Any], event_id: str, source: str,
              dataset_id: str | None, produced_at: datetime) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "stream": stream,
        "produced_at": produced_at,
        "schema_version": SCHEMA_VERSION,
        "key": key,
        "data": data,
        "source": source,
        "dataset_id": dataset_id,
    }


def key_text(value: Any) -> str:
    """A key field's value as the message key (an int key validates as a float)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def encode_records(
    stream: StreamSpec,
    records: list[Any],
    *,
    source: str,
    dataset_id: str | None = None,
    event_ids: list[str] | None = None,
    numbers: list[int] | None = None,
) -> EncodedChunk:
    """Validate ``records`` against the stream; encode the valid ones as raw
    events. ``numbers`` name each record in problems (file rows; default: the
    index); ``event_ids`` give each record its id (default: a new one)."""
    out = EncodedChunk()
    validation = validate_batch(stream, records)
    produced_at = datetime.now(UTC)
    for index in range(len(records)):
        number = numbers[index] if numbers is not None else index
        reason = validation.reasons.get(index)
        if reason is not None:
            field_name, _, why = reason.partition(": ")
            out.rejected.append(RowProblem(number, field_name, why))
            continue
        data = validation.row(index)
        event_id = event_ids[index] if event_ids is not None else uuid.uuid4().hex
        key = key_text(data[stream.key]) if stream.key is not None else event_id
        event = raw_event(stream.name, key, data, event_id, source, dataset_id, produced_at)
        out.messages.append((key.encode(), orjson.dumps(event, option=orjson.OPT_NAIVE_UTC)))
        out.event_ids.append(event_id)
    return out


def encode_chunk(stream: StreamSpec, rows: list[Row], dataset_id: str) -> EncodedChunk:
    """A chunk of an uploaded file's rows."""
    unreadable = [RowProblem(row.number, "row", row.problem or "unreadable row") for row in rows if row.record is None]
    readable = [row for row in rows if row.record is not None]
    out = encode_records(
        stream, [row.record for row in readable], source=UPLOAD, dataset_id=dataset_id,
        numbers=[row.number for row in readable],
        # The same row of the same dataset has the same id on every retry.
        event_ids=[row_event_id(dataset_id, row.number) for row in readable],
    )
    out.rejected.extend(unreadable)
    out.rejected.sort(key=lambda problem: problem.row)
    return out
