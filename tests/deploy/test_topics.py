"""The topic-init job against the real broker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from deploy.topics import init_topics
from shared.topics import Topics
from tests.streams import STREAMS

ROOT = Path(__file__).resolve().parents[2]


async def describe(bootstrap: str, names: list[str]) -> tuple[dict[str, int], dict[str, str]]:
    """Partitions and cleanup.policy of each topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
        partitions = {topic["topic"]: len(topic["partitions"]) for topic in described}
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
        policies = {}
        for response in responses:
            for resource in response.resources:
                _, _, _, name, entries = resource[:5]
                policies[name] = next(entry[1] for entry in entries if entry[0] == "cleanup.policy")
        return partitions, policies
    finally:
        await admin.close()


async def test_init_topics_creates_every_topic_with_its_partitions(
    kafka_bootstrap: str, unique_name: Callable[..., str]
) -> None:
    prefix = unique_name("deploy") + "."
    topics = Topics(prefix)
    names = [name for name, _ in topics.all(STREAMS)]

    created = await init_topics(kafka_bootstrap, prefix, partitions=4, timeout=60)

    assert sorted(created) == sorted(names)
    partitions, policies = await describe(kafka_bootstrap, names)
    for stream in STREAMS:
        for name in (topics.raw(stream), topics.features(stream), topics.predictions(stream)):
            assert partitions[name] == 4, name
            assert policies[name] == "delete", name
    assert policies[topics.models] == "compact"
    assert policies[topics.scalers] == "compact"
    assert partitions[topics.models] == partitions[topics.scalers] == 1
    # A second run (a restarted job) changes nothing and does not fail.
    assert await init_topics(kafka_bootstrap, prefix, partitions=4, timeout=60) == []


def test_topic_init_entrypoint_reads_the_environment(kafka_bootstrap: str, unique_name: Callable[..., str]) -> None:
    prefix = unique_name("deploy") + "."
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TOPIC_PREFIX": prefix,
        "TOPIC_PARTITIONS": "2",
        "LOG_JSON": "true",
    }
    result = subprocess.run(
        [sys.executable, "-m", "deploy.topics"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert '"event": "topics_ready"' in result.stderr
    partitions, _ = asyncio.run(describe(kafka_bootstrap, [Topics(prefix).raw("pressure")]))
    assert partitions == {Topics(prefix).raw("pressure"): 2}


def test_topic_init_rejects_a_bad_partition_count() -> None:
    env = {**os.environ, "TOPIC_PARTITIONS": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "deploy.topics"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "TOPIC_PARTITIONS" in result.stderr
