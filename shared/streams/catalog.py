"""The stream declarations in force in one process, kept current while it runs.

A :class:`Catalog` starts from the built-in declaration files (version 0:
shipped, not yet registered) and follows the compacted ``streams`` topic,
where the gateway publishes every registered version (:class:`StreamsWatcher`).
A newer version replaces the one in hand and an archived stream drops out;
services subscribe with :meth:`Catalog.on_change` to start or stop work for
a stream without a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from shared.events import StreamDeclared
from shared.kafka.partitions import assign_from_start, topic_partitions
from shared.retry import Backoff, pause
from shared.streams.declaration import DeclarationInvalid, StreamSpec, parse_declaration

log = structlog.get_logger(__name__)

ACTIVE = "active"
ARCHIVED = "archived"


class UnknownStream(KeyError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        names = ", ".join(sorted(known)) or "none"
        super().__init__(f"unknown stream {name[:48]!r} (streams: {names})")
        self.name = name

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Declared:
    spec: StreamSpec
    version: int  # 0: a built-in file not registered yet
    status: str = ACTIVE

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


Listener = Callable[[str, Declared], None]


class Catalog:
    def __init__(self, declarations: Iterable[StreamSpec] = ()) -> None:
        self._entries: dict[str, Declared] = {spec.name: Declared(spec, 0) for spec in declarations}
        self._listeners: list[Listener] = []

    def on_change(self, listener: Listener) -> None:
        """``listener(name, declared)`` after a stream is added, changed or archived."""
        self._listeners.append(listener)

    def get(self, name: str) -> StreamSpec:
        """The active declaration of ``name``; raises :class:`UnknownStream`."""
        entry = self._entries.get(name)
        if entry is None or not entry.active:
            raise UnknownStream(name, self.names())
        return entry.spec

    def entry(self, name: str) -> Declared | None:
        return self._entries.get(name)

    def entries(self) -> list[Declared]:
        """Every stream known, archived ones included."""
        return list(self._entries.values())

    def names(self) -> list[str]:
        """Active streams, in the order they became known."""
        return [name for name, entry in self._entries.items() if entry.active]

    def active(self) -> list[StreamSpec]:
        return [entry.spec for entry in self._entries.values() if entry.active]

    def __contains__(self, name: object) -> bool:
        entry = self._entries.get(name)  # type: ignore[call-overload]
        return entry is not None and entry.active

    def put(self, declared: Declared) -> bool:
        """Take ``declared`` unless a newer version is in hand; returns whether it changed anything."""
        current = self._entries.get(declared.spec.name)
        if current is not None and current.version > declared.version:
            return False
        if current is not None and current.version == declared.version and current.status == declared.status:
            return False
        self._entries[declared.spec.name] = declared
        log.info("stream_declared", stream=declared.spec.name, version=declared.version, status=declared.status)
        for listener in self._listeners:
            listener(declared.spec.name, declared)
        return True

    def apply(self, event: StreamDeclared) -> bool:
        """A streams-topic event; an unreadable declaration is logged and skipped
        (the gateway validated it, so this means a newer format or a bug)."""
        try:
            spec = parse_declaration(event.declaration)
        except DeclarationInvalid as error:
            log.error("stream_declaration_unreadable", stream=event.stream, version=event.version, error=str(error))
            return False
        if spec.name != event.stream:
            log.error("stream_declaration_misnamed", stream=event.stream, declared=spec.name)
            return False
        return self.put(Declared(spec, event.version, event.status))


class StreamsWatcher:
    """Reads the streams topic from its start into a catalog, then follows it.

    No consumer group: every process needs every declaration. The topic is
    compacted and has one partition, so reading it whole is cheap.
    """

    def __init__(self, bootstrap: str, topic: str, catalog: Catalog, client_id: str) -> None:
        self.client_id = client_id
        self.catalog = catalog
        self.topic = topic
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=15_000,
        )

    async def start(self, timeout: float = 30.0) -> None:
        """Start the consumer and apply everything already on the topic."""
        await self.consumer.start()
        async with asyncio.timeout(timeout):
            partitions = await topic_partitions(self.consumer, [self.topic])
            await assign_from_start(self.consumer, partitions)
            ends = await self.consumer.end_offsets(partitions)
            while [tp for tp in partitions if await self.consumer.position(tp) < ends[tp]]:
                await self.poll(timeout_ms=500)
        log.info("streams_catalog_ready", streams=self.catalog.names())

    async def stop(self) -> None:
        await self.consumer.stop()

    async def poll(self, timeout_ms: int = 500) -> int:
        applied = 0
        batches: dict[TopicPartition, list] = await self.consumer.getmany(timeout_ms=timeout_ms)
        for records in batches.values():
            for record in records:
                try:
                    event = StreamDeclared.model_validate_json(record.value or b"")
                except ValidationError as error:
                    log.warning("streams_event_unreadable", offset=record.offset, error=str(error)[:300])
                    continue
                applied += self.catalog.apply(event)
        return applied

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the topic until ``stop``; a broker away is waited out, not fatal."""
        backoff = Backoff(self.client_id, "streams_watch")
        while not stop.is_set():
            try:
                await self.poll()
                backoff.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - keep the declarations in hand and retry
                await pause(stop, backoff.failed(error))
