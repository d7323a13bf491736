"""ensure_topics against the real broker: replication settings, and errors
that aiokafka hands back instead of raising."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import InvalidReplicationFactorError

from shared.kafka.admin import ensure_topics
from shared.topics import RAW

pytestmark = pytest.mark.asyncio


async def min_insync_replicas(bootstrap: str, topic: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    entries = responses[0].resources[0][4]
    return next(entry[1] for entry in entries if entry[0] == "min.insync.replicas")


async def test_topics_get_min_insync_replicas_and_a_second_call_creates_nothing(
    kafka_bootstrap: str, unique_name: Callable[..., str]
) -> None:
    topic = unique_name("admin")
    assert await ensure_topics(kafka_bootstrap, [(topic, RAW)], min_insync_replicas=1) == [topic]
    assert await min_insync_replicas(kafka_bootstrap, topic) == "1"
    assert await ensure_topics(kafka_bootstrap, [(topic, RAW)]) == []


async def test_more_replicas_than_brokers_fails_instead_of_passing_silently(
    kafka_bootstrap: str, unique_name: Callable[..., str]
) -> None:
    # The test broker is a single node: three replicas cannot be placed.
    with pytest.raises(InvalidReplicationFactorError, match="creating topic"):
        await ensure_topics(kafka_bootstrap, [(unique_name("admin"), RAW)], replication_factor=3, min_insync_replicas=2)
