"""Create a deployment's topics (idempotently) before services use them."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from shared.topics import TopicSpec


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[tuple[str, TopicSpec]],
    *,
    partitions: int | None = None,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
) -> list[str]:
    """Create the topics that do not exist yet; returns the names created.

    With ``replication_factor`` 3 and ``min_insync_replicas`` 2 an acks=all
    write survives the loss of any one broker.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="fluxo-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=name,
                num_partitions=spec.partitions if spec.partitions == 1 or partitions is None else partitions,
                replication_factor=replication_factor,
                topic_configs={
                    "min.insync.replicas": str(min_insync_replicas),
                    **({"cleanup.policy": "compact"} if spec.compacted else {}),
                },
            )
            for name, spec in topics
            if name not in existing
        ]
        if not wanted:
            return []
        response = await admin.create_topics(wanted)
        # aiokafka returns per-topic errors instead of raising them; a topic
        # another service created first is fine, anything else (too few
        # brokers for the replication factor) must not pass silently.
        for name, code, *message in response.topic_errors:
            error = for_code(code)
            if code != 0 and error is not TopicAlreadyExistsError:
                raise error(f"creating topic {name}: {message[0] if message else ''}")
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
