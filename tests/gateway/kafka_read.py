"""Read what the gateway published, from the real broker."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord


async def read_records(bootstrap: str, topic: str, count: int, timeout: float = 30) -> list[ConsumerRecord]:
    """The first ``count`` records of ``topic`` (fails after ``timeout`` seconds)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        async with asyncio.timeout(timeout):
            while len(records) < count:
                batches = await consumer.getmany(timeout_ms=500)
                for batch in batches.values():
                    records.extend(batch)
    except TimeoutError:
        raise AssertionError(f"read {len(records)} of {count} records from {topic} in {timeout} s") from None
    finally:
        await consumer.stop()
    return records


async def message_count(bootstrap: str, topic: str) -> int:
    """Messages ever written to ``topic`` (the sum of its partitions' end offsets)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            while not consumer.assignment():
                await asyncio.sleep(0.05)
        offsets = await consumer.end_offsets(list(consumer.assignment()))
        return sum(offsets.values())
    finally:
        await consumer.stop()
