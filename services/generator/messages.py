"""Records to RawEvent messages: the envelope as a dict, encoded with orjson.

The envelope is exactly shared.events.RawEvent (a unit test checks that);
building dicts instead of models keeps the generator cheap at high rates.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson

from services.generator.base import Source, seeded_rng
from services.generator.invalid import corrupt
from shared.events import SCHEMA_VERSION


def raw_event(
    stream: str, key: str | None, data: dict[str, Any], produced_at: str, source: str, dataset_id: str | None = None
) -> dict[str, Any]:
    """The envelope; ``key`` None keys the event by its id."""
    # Random, not seeded: two runs with one seed are still distinct events.
    event_id = os.urandom(16).hex()
    return {
        "event_id": event_id,
        "stream": stream,
        "produced_at": produced_at,
        "schema_version": SCHEMA_VERSION,
        "key": event_id if key is None else key,
        "data": data,
        "source": source,
        "dataset_id": dataset_id,
    }


class Emitter:
    """A source's records as (key, value) message pairs, some deliberately invalid."""

    def __init__(self, source: Source, *, seed: int, invalid_rate: float = 0.0, origin: str = "generator") -> None:
        if not 0 <= invalid_rate <= 1:
            raise ValueError("invalid_rate must be in [0, 1]")
        self.source = source
        self.stream = source.spec.name
        self.invalid_rate = invalid_rate
        self.origin = origin
        self.valid = 0
        self.invalid: Counter[str] = Counter()
        self._rng = seeded_rng(seed, self.stream, "invalid")
        self._serial = 0

    def batch(self, n: int) -> list[tuple[bytes, bytes]]:
        records = self.source.next_batch(n)
        if not records:
            return []
        produced_at = datetime.now(UTC).isoformat()
        key_field = self.source.spec.key
        stream, origin = self.stream, self.origin
        broken = (self._rng.random(len(records)) < self.invalid_rate).tolist() if self.invalid_rate else None
        dumps = orjson.dumps
        messages = []
        for i, data in enumerate(records):
            # A replayed row may lack its key field (the normalizer rejects it);
            # the message still needs a key. A stream without a key field is
            # keyed by event id.
            key = None if key_field is None else str(data.get(key_field) or f"{stream}-{self._serial + i}")
            event = raw_event(stream, key, data, produced_at, origin)
            key = event["key"]
            if broken is not None and broken[i]:
                kind, value = corrupt(event, self.source.spec, self._rng)
                self.invalid[kind] += 1
            else:
                value = dumps(event)
                self.valid += 1
            messages.append((key.encode(), value))
        self._serial += len(records)
        return messages
