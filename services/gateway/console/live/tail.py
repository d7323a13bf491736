"""Follows every active stream's features topic and the dead-letter topic
for the console, without a consumer group (it commits nothing and takes no
partition away from the services).

When it starts following a topic it reads back the last few events of each
partition, so a page shows events at once; afterwards it keeps up with new
ones. What it keeps per stream is a :class:`StreamWindow`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from services.gateway.console.live.window import DeadLetter, StreamWindow, Total, totalled_columns
from shared.kafka.deadletter import ERROR, ORIGIN_TOPIC, read_headers
from shared.kafka.partitions import topic_partitions
from shared.streams import StreamSpec
from shared.topics import Topics

log = structlog.get_logger(__name__)

RETRY_SECONDS = 5.0
POLL_MS = 500
MAX_RECORDS = 2000


@dataclass
class EventTail:
    bootstrap: str
    topics: Topics
    streams: Callable[[], list[StreamSpec]]  # the active streams, asked on every round
    recent: int  # events kept per stream
    backfill: int  # events per partition read back when a topic is first followed
    timeout: float
    windows: dict[str, StreamWindow] = field(default_factory=dict)
    following: bool = False
    error: str | None = None
    _consumer: AIOKafkaConsumer | None = None
    _assigned: frozenset[str] = frozenset()

    def window(self, stream: str) -> StreamWindow | None:
        return self.windows.get(stream)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._round()
                self.following, self.error = True, None
            except Exception as error:  # noqa: BLE001 - log, drop the client, try again later
                self.following = False
                self.error = f"{type(error).__name__}: {error}"[:300]
                log.info("console_tail_failed", error=self.error)
                await self.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RETRY_SECONDS)

    async def _round(self) -> None:
        consumer = await self._client()
        specs = {spec.name: spec for spec in self.streams()}
        self._refresh_windows(specs)
        wanted = frozenset([self.topics.deadletter, *(self.topics.features(name) for name in specs)])
        if wanted != self._assigned:
            async with asyncio.timeout(self.timeout):
                await self._assign(consumer, wanted)
        batches = await consumer.getmany(timeout_ms=POLL_MS, max_records=MAX_RECORDS)
        for records in batches.values():
            for record in records:
                self._take(record)

    def _refresh_windows(self, specs: dict[str, StreamSpec]) -> None:
        for name, spec in specs.items():
            window = self.windows.get(name)
            if window is None:
                self.windows[name] = StreamWindow.of(spec, self.recent)
                continue
            # A new version may declare new quantities: total them from now on.
            for column, unit in totalled_columns(spec):
                window.totals.setdefault(column, Total(column, unit))

    async def _assign(self, consumer: AIOKafkaConsumer, wanted: frozenset[str]) -> None:
        existing = set(await consumer.topics())
        present = sorted(name for name in wanted if name in existing)
        partitions = await topic_partitions(consumer, present, self.timeout)
        # assign() forgets every position: keep those of the partitions already followed.
        still = set(partitions)
        kept = {tp: await consumer.position(tp) for tp in consumer.assignment() if tp in still}
        consumer.assign(partitions)
        fresh = [tp for tp in partitions if tp not in kept]
        for tp, position in kept.items():
            consumer.seek(tp, position)
        if fresh:
            starts = await consumer.beginning_offsets(fresh)
            ends = await consumer.end_offsets(fresh)
            for tp in fresh:
                consumer.seek(tp, max(starts[tp], ends[tp] - self.backfill))
        # A topic not created yet is asked for again next round.
        self._assigned = frozenset(present) if len(present) == len(wanted) else frozenset()

    def _take(self, record: ConsumerRecord) -> None:
        if record.topic == self.topics.deadletter:
            headers = read_headers(record.headers)
            origin = headers.get(ORIGIN_TOPIC, "")
            window = self.windows.get(self.topics.stream_of(origin)) if origin else None
            if window is not None:
                window.add_dead_letter(DeadLetter(record.timestamp / 1000.0, origin, headers.get(ERROR, "")))
            return
        window = self.windows.get(self.topics.stream_of(record.topic))
        if window is None or not record.value:
            return
        try:
            event = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            return  # the consumer dead-letters it; nothing to show
        if isinstance(event, dict):
            window.add(event)

    async def _client(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                auto_offset_reset="latest", client_id="gateway-console-tail", request_timeout_ms=10_000,
            )
            self._consumer = consumer
            self._assigned = frozenset()
            async with asyncio.timeout(self.timeout):
                await consumer.start()
        return self._consumer

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        self._assigned = frozenset()
        if consumer is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.timeout):
                    await consumer.stop()

