"""The bounded window of recent features events per stream.

Kafka is the log of record, so the window is not saved anywhere: at start
the reader assigns itself every partition of each features topic (no
consumer group, nothing committed) and seeks to ``end - size`` per
partition, then keeps reading. Events stay as raw bytes until a training run
decodes them, so keeping up with the stream costs an append per message.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from pydantic import ValidationError

from services.trainer import metrics
from shared.events import LabelEvent
from shared.kafka.partitions import topic_partitions

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Entry:
    partition: int
    offset: int
    value: bytes


class StreamWindow:
    """The newest ``size`` events of one stream's features topic, and the
    labels that arrived for them later (from its labels topic)."""

    def __init__(self, stream: str, topic: str, size: int, labels_topic: str | None = None) -> None:
        self.stream = stream
        self.topic = topic
        self.size = size
        self.labels_topic = labels_topic
        self.labels = LabelBook(2 * size)
        self._entries: deque[Entry] = deque(maxlen=size)
        # Events ever appended: tells the scheduler whether anything arrived
        # since a task was last trained.
        self.appended = 0

    def __len__(self) -> int:
        return len(self._entries)

    def append(self, partition: int, offset: int, value: bytes | None) -> None:
        if value:
            self._entries.append(Entry(partition, offset, value))
            self.appended += 1

    def snapshot(self, last: int | None = None) -> list[Entry]:
        """The newest ``last`` entries (all when None), oldest first."""
        entries = list(self._entries)
        return entries if last is None or last >= len(entries) else entries[len(entries) - last :]


def decode_entries(entries: Iterable[Entry], labels: LabelBook | None = None) -> list[dict[str, Any]]:
    """Entries as event dicts, with where they are in the log (``_partition``,
    ``_offset``: the gate needs them) and the labels that arrived later
    joined into their targets; unreadable ones are skipped (the normalizer
    only writes valid events, so this is a guard, not a path)."""
    rows = []
    for entry in entries:
        try:
            event = orjson.loads(entry.value)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(event, dict):
            continue
        event["_partition"], event["_offset"] = entry.partition, entry.offset
        if labels is not None:
            late = labels.get(event.get("event_id"))
            if late:
                event["targets"] = {**late, **(event.get("targets") or {})}
        rows.append(event)
    return rows


class LabelBook:
    """Labels that arrived after their event, by event id; the oldest are
    forgotten beyond ``size`` (they belong to events long out of the window)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._values)

    def put(self, event_id: str, values: dict[str, Any]) -> None:
        self._values[event_id] = {**self._values.get(event_id, {}), **values}
        self._values.move_to_end(event_id)
        while len(self._values) > self.size:
            self._values.popitem(last=False)

    def get(self, event_id: Any) -> dict[str, Any] | None:
        return self._values.get(event_id) if isinstance(event_id, str) else None


def window_offsets(topic: str, entries: list[Entry]) -> dict[str, Any]:
    """The training window as topic offsets: first and last offset per partition."""
    partitions: dict[str, list[int]] = {}
    for entry in entries:
        span = partitions.setdefault(str(entry.partition), [entry.offset, entry.offset])
        span[0] = min(span[0], entry.offset)
        span[1] = max(span[1], entry.offset)
    return {"topic": topic, "partitions": dict(sorted(partitions.items())), "events": len(entries)}


class WindowReader:
    """Fills one StreamWindow per stream from its features topic.

    Streams registered while it runs get a window of their own: :meth:`add`
    queues it and the reading loop assigns its partitions between two reads.
    """

    def __init__(self, consumer: AIOKafkaConsumer, windows: dict[str, StreamWindow]) -> None:
        self.consumer = consumer
        self.windows = windows
        self._by_topic = {topic: window for window in windows.values() for topic in _topics(window)}
        self._catch_up: dict[TopicPartition, int] = {}
        self._added: list[StreamWindow] = []
        self.ready = asyncio.Event()

    async def start(self) -> None:
        """Assign every partition and seek to ``end - size``; call after consumer.start()."""
        partitions = await topic_partitions(self.consumer, self._by_topic)
        self.consumer.assign(partitions)
        behind = await self._position(partitions)
        if not self._catch_up:
            self.ready.set()
        log.info("window_rebuild_started", events_behind=behind)

    async def _position(self, partitions: list[TopicPartition]) -> int:
        """Seek ``partitions`` to ``end - size``; returns how many events that leaves to read."""
        if not partitions:
            return 0
        beginnings = await self.consumer.beginning_offsets(partitions)
        ends = await self.consumer.end_offsets(partitions)
        behind = 0
        for tp in partitions:
            start = max(beginnings[tp], ends[tp] - self._by_topic[tp.topic].size)
            self.consumer.seek(tp, start)
            if ends[tp] > start:
                self._catch_up[tp] = ends[tp]
                behind += ends[tp] - start
        return behind

    def add(self, window: StreamWindow) -> None:
        """Start keeping ``window`` (a stream registered after start)."""
        self.windows[window.stream] = window
        self._added.append(window)

    async def _assign_added(self) -> None:
        added, self._added = self._added, []
        for window in added:
            for topic in _topics(window):
                self._by_topic[topic] = window
        new = await topic_partitions(self.consumer, [topic for window in added for topic in _topics(window)])
        kept = sorted(self.consumer.assignment())
        positions = {tp: await self.consumer.position(tp) for tp in kept}
        # assign() replaces the assignment: the partitions already read keep
        # their positions by seeking back to them.
        self.consumer.assign(kept + new)
        for tp, offset in positions.items():
            self.consumer.seek(tp, offset)
        behind = await self._position(new)
        log.info("window_added", streams=[window.stream for window in added], events_behind=behind)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self._added:
                await self._assign_added()
            batches = await self.consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, records in batches.items():
                window = self._by_topic[tp.topic]
                if tp.topic == window.labels_topic:
                    for record in records:
                        _take_label(window, record.value)
                else:
                    for record in records:
                        window.append(record.partition, record.offset, record.value)
                if records and tp in self._catch_up and records[-1].offset + 1 >= self._catch_up[tp]:
                    del self._catch_up[tp]
            if not self.ready.is_set() and not await self._behind():
                self.ready.set()
                log.info("window_rebuilt", events={name: len(w) for name, w in self.windows.items()})
            for name, window in self.windows.items():
                metrics.WINDOW_ROWS.labels(name).set(len(window))

    async def _behind(self) -> bool:
        # A partition whose last records were compacted or deleted never
        # yields the end offset itself; its position reaching it counts too.
        for tp in list(self._catch_up):
            if await self.consumer.position(tp) >= self._catch_up[tp]:
                del self._catch_up[tp]
        return bool(self._catch_up)


def _topics(window: StreamWindow) -> list[str]:
    return [window.topic] + ([window.labels_topic] if window.labels_topic else [])


def _take_label(window: StreamWindow, value: bytes | None) -> None:
    try:
        label = LabelEvent.model_validate_json(value or b"")
    except ValidationError:
        return  # the consumer dead-letters unreadable labels; here they are only skipped
    window.labels.put(label.event_id, dict(label.values))
