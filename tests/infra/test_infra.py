"""The infrastructure fixtures hand out a working Kafka broker and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.helpers import wait_for


async def test_kafka_topic_produce_consume(
    kafka_bootstrap: str, unique_name: Callable[..., str]
) -> None:
    topic = unique_name()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        await wait_for(
            lambda: _has_topic(admin, topic), timeout=10, message=f"topic {topic} not listed"
        )
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"ping", key=b"k")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=unique_name("g"),
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            message = await consumer.getone()
    finally:
        await consumer.stop()
    assert (message.key, message.value) == (b"k", b"ping")


async def _has_topic(admin: AIOKafkaAdminClient, topic: str) -> bool:
    return topic in await admin.list_topics()


async def test_postgres_answers(postgres_dsn: str) -> None:
    connection = await asyncpg.connect(postgres_dsn)
    try:
        version = await connection.fetchval("select version()")
    finally:
        await connection.close()
    assert version.startswith("PostgreSQL ")
