"""The vectorized partitioner agrees with aiokafka's (the Java client's murmur2)."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner, murmur2

from shared.kafka.partitioner import murmur2_many, partitions_for


def random_keys(count: int) -> list[bytes]:
    rng = random.Random(7)
    keys = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 41))) for _ in range(count)]
    return keys + [b"", b"a", b"ab", b"abc", b"abcd", "Portugal".encode(), "sensor-0042".encode()]


def test_hashes_match_aiokafka_for_every_length_and_byte() -> None:
    keys = random_keys(3000)
    assert murmur2_many(keys).tolist() == [murmur2(key) for key in keys]


def test_partitions_match_the_default_partitioner() -> None:
    keys = random_keys(2000)
    for count in (1, 3, 6, 7):
        partitions = list(range(count))
        expected = [DefaultPartitioner()(key, partitions, partitions) for key in keys]
        assert partitions_for(keys, partitions) == expected


def test_unkeyed_messages_go_to_an_existing_partition() -> None:
    chosen = partitions_for([None] * 200 + [b"k"], [0, 1, 2])
    assert set(chosen[:200]) <= {0, 1, 2}
    assert len(set(chosen[:200])) > 1
