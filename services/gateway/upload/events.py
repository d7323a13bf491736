"""Uploaded rows to RawEvent messages: validate a chunk, encode the good rows.

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

from services.gateway.upload.csvfile import Row
from shared.events import SCHEMA_VERSION
from shared.streams import StreamSpec
from shared.validation import validate_batch

SOURCE = "upload"


@dataclass(frozen=True)
class RowProblem:
    row: int
    field: str
    reason: str


@dataclass
class EncodedChunk:
    messages: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, value)
    rejected: list[RowProblem] = field(default_factory=list)


def raw_event(stream: str, key: str, data: dict[str, Any], dataset_id: str, produced_at: datetime) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4().hex,
        "stream": stream,
        "produced_at": produced_at,
        "schema_version": SCHEMA_VERSION,
        "key": key,
        "data": data,
        "source": SOURCE,
        "dataset_id": dataset_id,
    }


def encode_chunk(stream: StreamSpec, rows: list[Row], dataset_id: str) -> EncodedChunk:
    out = EncodedChunk()
    candidates: list[Row] = []
    for row in rows:
        if row.record is None:
            out.rejected.append(RowProblem(row.number, "row", row.problem or "unreadable row"))
        else:
            candidates.append(row)
    validation = validate_batch(stream, [row.record for row in candidates])
    produced_at = datetime.now(UTC)
    for index, row in enumerate(candidates):
        reason = validation.reasons.get(index)
        if reason is not None:
            field_name, _, why = reason.partition(": ")
            out.rejected.append(RowProblem(row.number, field_name, why))
            continue
        data = validation.row(index)
        key = str(data[stream.key_field])
        event = raw_event(stream.name, key, data, dataset_id, produced_at)
        out.messages.append((key.encode(), orjson.dumps(event, option=orjson.OPT_NAIVE_UTC)))
    out.rejected.sort(key=lambda problem: problem.row)
    return out
