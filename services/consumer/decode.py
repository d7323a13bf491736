"""Features messages into per-stream batches of event dicts.

orjson straight into dicts (the pydantic FeaturesEvent stays the schema; a
unit test holds the two together). A message that is not a features event
is rejected with the reason, for the dead-letter topic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from aiokafka.structs import ConsumerRecord

from shared.kafka.messages import Rejected
from shared.streams import StreamSpec
from shared.streams.catalog import Catalog
from shared.topics import Topics


@dataclass
class StreamBatch:
    stream: StreamSpec
    records: list[ConsumerRecord] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.events)

    def keep(self, mask: np.ndarray) -> StreamBatch:
        """The rows where ``mask`` is True."""
        indices = np.flatnonzero(mask).tolist()
        return StreamBatch(self.stream, [self.records[i] for i in indices], [self.events[i] for i in indices])


def _problem(event: Any) -> str | None:
    if not isinstance(event, dict):
        return f"expected a JSON object, got {type(event).__name__}"
    event_id = event.get("event_id")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 64:
        return "event_id: missing or not a string of 1 to 64 characters"
    if not isinstance(event.get("features"), dict):
        return "features: missing or not an object"
    categories = event.get("categories")
    if categories is not None and not isinstance(categories, dict):
        return "categories: not an object"
    targets = event.get("targets")
    if targets is not None and not isinstance(targets, dict):
        return "targets: not an object"
    context = event.get("context")
    if context is not None and not isinstance(context, dict):
        return "context: not an object"
    return None


def decode_batch(
    topics: Topics, catalog: Catalog, records: list[ConsumerRecord]
) -> tuple[dict[str, StreamBatch], list[Rejected]]:
    batches: dict[str, StreamBatch] = {}
    rejected: list[Rejected] = []
    streams: dict[str, StreamSpec | None] = {}
    for record in records:
        if record.topic not in streams:
            name = topics.stream_of(record.topic)
            streams[record.topic] = catalog.get(name) if name in catalog else None
        stream = streams[record.topic]
        if stream is None:
            rejected.append(Rejected(record, f"topic {record.topic!r} is the features topic of no active stream"))
            continue
        try:
            event = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError as error:
            rejected.append(Rejected(record, f"not JSON: {error}"))
            continue
        problem = _problem(event)
        if problem is not None:
            rejected.append(Rejected(record, problem))
            continue
        batch = batches.get(stream.name)
        if batch is None:
            batch = batches[stream.name] = StreamBatch(stream)
        batch.records.append(record)
        batch.events.append(event)
    return batches, rejected
