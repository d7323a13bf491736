"""Registering, evolving and archiving streams: the gateway's side of the catalog.

A registration is all or nothing: the declaration is checked (422 naming
every problem's JSON path), compared with the stream's latest version (200
if identical, 409 naming each incompatibility), the stream's topics are
created, and the new version is stored in PostgreSQL and published on the
compacted streams topic in one transaction: if the publication fails the
row is rolled back, and topics this call created are deleted, so there is
never a topic without a stored declaration nor a declaration without its
topics. Every service then picks the version up from the topic.

The built-in declaration files are registered (as version 1) the first time
a gateway starts against an empty registry; after that they evolve through
the API like any other stream.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from services.gateway.state import GatewayState
from shared.events import StreamDeclared
from shared.kafka.admin import delete_topics, ensure_topics
from shared.kafka.clients import event_message
from shared.streams import Problem, StreamSpec, builtin_streams
from shared.streams import store as streams_store
from shared.streams.catalog import ACTIVE, ARCHIVED, Declared
from shared.streams.compat import incompatibilities
from shared.streams.store import StoredStream, fingerprint

log = structlog.get_logger(__name__)

CREATED = "created"
UNCHANGED = "unchanged"


class Incompatible(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.path}: {p.reason}" for p in problems))
        self.problems = problems


class NoSuchStream(KeyError):
    pass


@dataclass(frozen=True)
class Registration:
    outcome: str  # created | unchanged
    stored: StoredStream


async def register(state: GatewayState, spec: StreamSpec, timeout: float) -> Registration:
    """Store and publish ``spec`` as the stream's next version (see the module doc)."""
    async with state.pool.acquire() as connection, connection.transaction():
        await streams_store.lock(connection, spec.name)
        current = await streams_store.latest(connection, spec.name)
        if current is not None and current.status == ACTIVE and current.fingerprint == fingerprint(spec):
            return Registration(UNCHANGED, current)
        if current is not None:
            problems = incompatibilities(current.spec, spec)
            if problems:
                raise Incompatible(problems)
        version = 1 if current is None else current.version + 1
        async with asyncio.timeout(timeout):
            created = await ensure_topics(
                state.settings.kafka_bootstrap_servers, state.topics.of_stream(spec.name), **state.settings.topic_replication
            )
        try:
            stored = await streams_store.insert(connection, spec, version, ACTIVE)
            async with asyncio.timeout(timeout):
                await _publish(state, stored)
        except BaseException:
            await _undo_topics(state, created)
            raise
    state.catalog.put(Declared(spec, version, ACTIVE))
    log.info("stream_registered", stream=spec.name, version=version, topics_created=created)
    return Registration(CREATED, stored)


async def archive(state: GatewayState, name: str, timeout: float) -> StoredStream:
    """Archive a stream: a new version with status archived. Its topics,
    events, predictions and models stay; no service trains or scores it."""
    async with state.pool.acquire() as connection, connection.transaction():
        await streams_store.lock(connection, name)
        current = await streams_store.latest(connection, name)
        if current is None:
            raise NoSuchStream(name)
        if current.status == ARCHIVED:
            return current
        stored = await streams_store.insert(connection, current.spec, current.version + 1, ARCHIVED)
        async with asyncio.timeout(timeout):
            await _publish(state, stored)
    state.catalog.put(Declared(current.spec, stored.version, ARCHIVED))
    log.info("stream_archived", stream=name, version=stored.version)
    return stored


async def _publish(state: GatewayState, stored: StoredStream) -> None:
    event = StreamDeclared(
        stream=stored.name, version=stored.version, status=stored.status, declaration=stored.declaration
    )
    await state.publisher.send([event_message(state.topics.streams, event, stored.name)],
                               state.settings.dependency_timeout_seconds)


async def _undo_topics(state: GatewayState, created: list[str]) -> None:
    try:
        await delete_topics(state.settings.kafka_bootstrap_servers, created)
    except Exception:  # noqa: BLE001 - the error that got us here matters more
        log.error("stream_topics_not_deleted", topics=created, exc_info=True)


async def load_catalog(state: GatewayState, timeout: float) -> None:
    """Register the built-in streams on a first start, then take every stream's
    latest stored version into the catalog (the registry is authoritative)."""
    for spec in builtin_streams():
        if await streams_store.latest(state.pool, spec.name) is None:
            try:
                await register(state, spec, timeout)
            except Exception:  # noqa: BLE001 - serve the file's version; the next start tries again
                log.error("builtin_stream_not_registered", stream=spec.name, exc_info=True)
    for stored in await streams_store.all_latest(state.pool):
        state.catalog.put(Declared(stored.spec, stored.version, stored.status))
