"""Create a deployment's topics (idempotently) before services use them."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.topics import TopicSpec


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[tuple[str, TopicSpec]],
    *,
    partitions: int | None = None,
    replication_factor: int = 1,
) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="fluxo-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=name,
                num_partitions=spec.partitions if spec.partitions == 1 or partitions is None else partitions,
                replication_factor=replication_factor,
                topic_configs={"cleanup.policy": "compact"} if spec.compacted else {},
            )
            for name, spec in topics
            if name not in existing
        ]
        if not wanted:
            return []
        try:
            await admin.create_topics(wanted)
        except TopicAlreadyExistsError:
            pass  # another service created them first
        return [topic.name for topic in wanted]
    finally:
        await admin.close()


async def delete_topics(bootstrap_servers: str, names: list[str]) -> None:
    """Delete topics (undoing a registration that could not be completed)."""
    if not names:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="fluxo-admin")
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()
