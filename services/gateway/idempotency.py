"""Idempotency keys: a retried request publishes the same event ids.

A request that answered 503 may have published part of its records (a batch
already on the wire when Kafka went away is written or not; nobody can
know). Sent again with the same ``Idempotency-Key`` header, it publishes
the same records under the same event ids, and everything downstream is
keyed by event id (predictions are upserted per event, task and model
version; a dataset scan keeps one row per event), so the retry adds
nothing twice. Ids are derived, not stored: any gateway replica computes
the same ones.
"""

from __future__ import annotations

import hashlib
import re

from services.gateway.errors import invalid

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")


def checked_key(value: str | None) -> str | None:
    """The header's value, or None when absent; 422 when malformed."""
    if value is None:
        return None
    if not _KEY.match(value):
        raise invalid(HEADER, "1 to 128 printable ASCII characters without spaces (a UUID is a good key)")
    return value


def _digest(*parts: str) -> str:
    # NUL cannot occur in a key or a stream name, so the parts never run together.
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def upload_dataset_id(stream: str, key: str) -> str:
    """The dataset id of an upload to ``stream`` under ``key``."""
    return _digest("upload", stream, key)


def row_event_id(dataset_id: str, row: int) -> str:
    """The event id of an uploaded file's row (its line number): the same on every retry."""
    return _digest("row", dataset_id, str(row))


def request_event_ids(stream: str, key: str, count: int) -> list[str]:
    """Event ids of the records of POST /v1/streams/{stream}/events under ``key``, by index."""
    return [_digest("events", stream, key, str(index)) for index in range(count)]
