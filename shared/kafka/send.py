"""Send many messages at once and wait for every acknowledgement.

aiokafka's ``send()`` costs a coroutine, a metadata check and a future per
message; for a batch of thousands that is most of a worker's time. Here
messages are grouped by partition (Kafka's default murmur2 partitioner,
computed for the whole batch at once by shared.kafka.partitioner: a key maps
to the same partition as with ``send()``, and order per key holds), appended
to batch builders and submitted with ``send_batch``. Measured on the local broker: about 3 times the message
rate of one ``send()`` per message (``python -m bench.kafka_send``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer

from shared.kafka.messages import Outgoing
from shared.kafka.partitioner import partitions_for


async def send_batched(producer: AIOKafkaProducer, messages: Iterable[Outgoing]) -> dict[str, int]:
    """Send ``messages`` (order kept per partition) and wait until the broker
    has acknowledged all of them; returns the count per topic."""
    by_topic: dict[str, list[Outgoing]] = {}
    for message in messages:
        by_topic.setdefault(message.topic, []).append(message)
    by_partition: dict[tuple[str, int], list[Outgoing]] = {}
    for topic, topic_messages in by_topic.items():
        partitions = sorted(await producer.partitions_for(topic))
        for message, partition in zip(
            topic_messages, partitions_for([m.key for m in topic_messages], partitions), strict=True
        ):
            by_partition.setdefault((topic, partition), []).append(message)

    futures: list[asyncio.Future] = []
    counts: dict[str, int] = {}
    for (topic, partition), batch_messages in by_partition.items():
        batch = producer.create_batch()
        for message in batch_messages:
            headers = list(message.headers)
            if batch.append(key=message.key, value=message.value, timestamp=None, headers=headers) is None:
                # The builder is full (max_batch_size): ship it, start another.
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                if batch.append(key=message.key, value=message.value, timestamp=None, headers=headers) is None:
                    raise ValueError(f"a message for {topic} is larger than the producer's max_batch_size")
        futures.append(await producer.send_batch(batch, topic, partition=partition))
        counts[topic] = counts.get(topic, 0) + len(batch_messages)
    await asyncio.gather(*futures)
    return counts
