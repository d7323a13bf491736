"""Integration-test plumbing on the real broker, PostgreSQL and S3 server: a
fresh database, topic prefix and bucket per test, producing events, reading
topics, running a service in-process."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from shared.db import apply_migrations, create_pool
from shared.db.databases import fresh_database
from shared.events import Event
from shared.infra.s3 import S3Endpoint
from shared.kafka.admin import ensure_topics
from shared.kafka.partitions import assign_from_start, topic_partitions
from shared.topics import Topics


@dataclass
class Database:
    dsn: str
    pool: asyncpg.Pool


@pytest.fixture
async def database(postgres_dsn: str) -> AsyncIterator[Database]:
    """A database of its own (the registry has one active model per stream
    and task, so tests cannot share one), migrated."""
    async with fresh_database(postgres_dsn, f"t_{uuid.uuid4().hex}") as dsn:
        pool = await create_pool(dsn, max_size=4)
        try:
            await apply_migrations(pool)
            yield Database(dsn, pool)
        finally:
            await pool.close()


@pytest.fixture
async def topics(kafka_bootstrap: str, unique_name: Callable[..., str]) -> Topics:
    """A fresh topic prefix with every topic created."""
    deployment = Topics(f"{unique_name('p')}-")
    await ensure_topics(kafka_bootstrap, deployment.all())
    return deployment


def fresh_bucket_name(test_name: str) -> str:
    """A bucket name of its own for a test, e.g. "t-test-round-trip-1a2b3c4d".

    S3 allows 3 to 63 of [a-z0-9.-], starting and ending with a letter or digit.
    """
    test = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].rstrip("-")
    return f"t-{test}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def s3_bucket(s3_server: S3Endpoint, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty bucket, deleted with everything in it afterwards (a
    server from the environment may be shared and is not thrown away)."""
    name = fresh_bucket_name(request.node.name)
    filesystem = s3_server.filesystem(allow_bucket_creation=True, allow_bucket_deletion=True)
    filesystem.create_dir(name)
    yield name
    filesystem.delete_dir(name)


async def produce(bootstrap: str, topic: str, events: list[Event], keys: list[str] | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, event.to_bytes(), key=(keys[i] if keys else getattr(event, "key", event.stream)).encode())
            for i, event in enumerate(events)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str, timeout: float = 20.0) -> list[ConsumerRecord]:
    """Every message on ``topic`` up to its current end (none if it does not exist yet)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        if topic not in await consumer.topics():
            return records  # not created yet: nothing on it
        partitions = await topic_partitions(consumer, [topic])
        await assign_from_start(consumer, partitions)
        ends = await consumer.end_offsets(partitions)
        async with asyncio.timeout(timeout):
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                for tp, batch in (await consumer.getmany(timeout_ms=200)).items():
                    # A snapshot: what arrives while reading stays out.
                    records.extend(r for r in batch if r.offset < ends[tp])
    finally:
        await consumer.stop()
    return records


async def committed_everything(bootstrap: str, group: str, topic: str) -> bool:
    """Whether ``group`` has committed every partition of ``topic`` to its end."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        ends = await consumer.end_offsets(await topic_partitions(consumer, [topic]))
        return all(tp in committed and committed[tp].offset >= end for tp, end in ends.items())
    finally:
        await consumer.stop()
        await admin.close()


@contextlib.asynccontextmanager
async def running(main: Callable[[asyncio.Event], Awaitable[None]]) -> AsyncIterator[asyncio.Task[None]]:
    """Run a service's ``run(settings, stop)`` in-process for the block; it
    must still be running at the end (a crash fails the test) and stop cleanly."""
    stop = asyncio.Event()
    task = asyncio.create_task(main(stop))
    try:
        yield task
        if task.done():
            task.result()  # raises the crash
            raise AssertionError("the service stopped by itself")
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.shield(task), timeout=30)


async def fetch(pool: asyncpg.Pool, query: str, *args: Any) -> list[asyncpg.Record]:
    return await pool.fetch(query, *args)
