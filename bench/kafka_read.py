"""Read back what a phase wrote to Kafka: record timestamps of whole topics."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer

from shared.kafka.partitions import assign_from_start, topic_partitions


async def record_timestamps(bootstrap: str, topics: Iterable[str], timeout: float = 120.0) -> list[int]:
    """The timestamp (ms, set by the producer when the record was sent) of
    every record in ``topics``, from the beginning to the current end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    await consumer.start()
    stamps: list[int] = []
    try:
        partitions = await topic_partitions(consumer, list(topics))
        await assign_from_start(consumer, partitions)
        ends = await consumer.end_offsets(partitions)
        async with asyncio.timeout(timeout):
            pending = {tp for tp in partitions if ends[tp] > 0}
            while pending:
                batches = await consumer.getmany(*pending, timeout_ms=500, max_records=50_000)
                for tp, records in batches.items():
                    stamps.extend(record.timestamp for record in records)
                    if records and records[-1].offset + 1 >= ends[tp]:
                        pending.discard(tp)
    finally:
        await consumer.stop()
    return stamps
