"""Every partition of some topics, for readers that assign instead of joining a group."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition


async def topic_partitions(consumer: AIOKafkaConsumer, topics: Iterable[str], timeout: float = 15.0) -> list[TopicPartition]:
    """The partitions of ``topics`` (which must exist), asking the broker for
    fresh metadata while the client does not know a topic yet."""
    found: list[TopicPartition] = []
    async with asyncio.timeout(timeout):
        for topic in topics:
            while (partitions := consumer.partitions_for_topic(topic)) is None:
                # Tracking the topic forces a metadata refresh for it.
                await consumer._client.add_topic(topic)  # noqa: SLF001 - aiokafka has no public refresh
                if consumer.partitions_for_topic(topic) is None:
                    await asyncio.sleep(0.1)
            found.extend(TopicPartition(topic, p) for p in sorted(partitions))
    return found


async def assign_from_start(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
    """Assign ``partitions`` and position each at its first offset.

    Explicit seeks, not ``seek_to_beginning()``: that one can lose a race with
    the offset reset aiokafka starts by itself on ``assign()`` and leave the
    reader at the end of the log, silently reading nothing.
    """
    consumer.assign(partitions)
    for tp, offset in (await consumer.beginning_offsets(partitions)).items():
        consumer.seek(tp, offset)
