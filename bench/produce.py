"""Raw events onto the raw topics, fast, before a measurement starts.

The generator's own Emitter builds the messages (so they are exactly what
the generator sends); they go out as whole record batches per partition
(``create_batch``/``send_batch``), several times faster than one ``send``
per message, so pre-producing a few hundred thousand events takes seconds.
Keys are partitioned with Kafka's default murmur2 partitioner, as a keyed
``send`` would be, so each key keeps its order within one partition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from bench.datasets import make_source
from services.generator.messages import Emitter
from shared.kafka import make_producer
from shared.topics import Topics

CHUNK = 10_000


async def _send_chunk(
    producer: AIOKafkaProducer, topic: str, partitions: list[int], messages: list[tuple[bytes, bytes]]
) -> list[asyncio.Future[object]]:
    by_partition: dict[int, list[tuple[bytes, bytes]]] = {p: [] for p in partitions}
    for key, value in messages:
        by_partition[DefaultPartitioner()(key, partitions, partitions)].append((key, value))
    futures = []
    for partition, items in by_partition.items():
        batch = producer.create_batch()
        for key, value in items:
            if batch.append(key=key, value=value, timestamp=None) is None:
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        if batch.record_count():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


async def produce_raw(bootstrap: str, topics: Topics, counts: Mapping[str, int], seed: int = 11) -> dict[str, int]:
    """Send ``counts[stream]`` valid raw events per stream; returns what was acknowledged."""
    producer = make_producer(bootstrap, "bench-produce")
    await producer.start()
    sent: dict[str, int] = {}
    try:
        for stream, count in counts.items():
            topic = topics.raw(stream)
            partitions = sorted(await producer.partitions_for(topic))
            emitter = Emitter(make_source(stream, seed), seed=seed)
            futures: list[asyncio.Future[object]] = []
            left = count
            while left > 0:
                messages = emitter.batch(min(CHUNK, left))
                left -= len(messages)
                futures.extend(await _send_chunk(producer, topic, partitions, messages))
            await asyncio.gather(*futures)
            sent[stream] = count - left
    finally:
        await producer.stop()
    return sent
