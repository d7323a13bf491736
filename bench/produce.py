"""Raw events onto the raw topics, fast, before a measurement starts.

The generator's own Emitter builds the messages (so they are exactly what
the generator sends); they go out through shared.kafka.send.send_batched,
whole record batches per partition chosen by Kafka's default partitioner,
so each key keeps its order within one partition and pre-producing a few
hundred thousand events takes seconds.
"""

from __future__ import annotations

from collections.abc import Mapping

from bench.datasets import make_source
from services.generator.messages import Emitter
from shared.kafka import Outgoing, make_producer
from shared.kafka.send import send_batched
from shared.topics import Topics

CHUNK = 10_000


async def produce_raw(bootstrap: str, topics: Topics, counts: Mapping[str, int], seed: int = 11) -> dict[str, int]:
    """Send ``counts[stream]`` valid raw events per stream; returns what was acknowledged."""
    producer = make_producer(bootstrap, "bench-produce")
    await producer.start()
    sent: dict[str, int] = {}
    try:
        for stream, count in counts.items():
            topic = topics.raw(stream)
            emitter = Emitter(make_source(stream, seed), seed=seed)
            sent[stream] = 0
            while sent[stream] < count:
                messages = emitter.batch(min(CHUNK, count - sent[stream]))
                await send_batched(producer, (Outgoing(topic, value, key) for key, value in messages))
                sent[stream] += len(messages)
    finally:
        await producer.stop()
    return sent
