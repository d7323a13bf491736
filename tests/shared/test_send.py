"""Batched sending keeps Kafka's contract: same partition per key as send(), order per key."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shared.kafka import make_producer
from shared.kafka.admin import ensure_topics
from shared.kafka.messages import Outgoing
from shared.kafka.send import send_batched
from shared.topics import RAW
from tests.live import read_all

pytestmark = pytest.mark.asyncio


async def test_batched_send_matches_send_partitions_and_keeps_order(
    kafka_bootstrap: str, unique_name: Callable[..., str]
) -> None:
    batched_topic, plain_topic = unique_name("batched"), unique_name("plain")
    await ensure_topics(kafka_bootstrap, [(batched_topic, RAW), (plain_topic, RAW)])
    keys = [f"sensor-{i % 17}".encode() for i in range(3000)]
    producer = make_producer(kafka_bootstrap, "test")
    await producer.start()
    try:
        # Large enough values that the builder fills up and starts new batches.
        value = b"x" * 900
        counts = await send_batched(
            producer, [Outgoing(batched_topic, str(i).encode() + b":" + value, key) for i, key in enumerate(keys)]
        )
        assert counts == {batched_topic: len(keys)}
        for key in sorted(set(keys)):
            await producer.send_and_wait(plain_topic, b"", key=key)
    finally:
        await producer.stop()

    plain_partition = {r.key: r.partition for r in await read_all(kafka_bootstrap, plain_topic)}
    received = await read_all(kafka_bootstrap, batched_topic)
    assert len(received) == len(keys)
    sequence_per_key: dict[bytes, list[int]] = {}
    for record in received:
        assert record.partition == plain_partition[record.key], "a key landed on another partition than send() uses"
        sequence_per_key.setdefault(record.key, []).append(int(record.value.split(b":", 1)[0]))
    for key, sequence in sequence_per_key.items():
        assert sequence == sorted(sequence), f"order broken for {key!r}"
