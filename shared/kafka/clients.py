"""Client factories with Fluxo's delivery settings in one place."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.events import Event
from shared.kafka.messages import Outgoing
from shared.kafka.send import send_batched


def make_producer(bootstrap_servers: str, client_id: str, *, linger_ms: int = 5) -> AIOKafkaProducer:
    # Idempotence with acks=all: a retried send never duplicates or reorders
    # a partition's messages, which at-least-once consumers rely on.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=512 * 1024,
        request_timeout_ms=30_000,
    )


def make_consumer(
    bootstrap_servers: str,
    group_id: str | None,
    topics: Iterable[str],
    client_id: str,
    *,
    auto_offset_reset: str = "earliest",
    max_partition_fetch_bytes: int = 4 * 1024 * 1024,
    session_timeout_ms: int = 30_000,
) -> AIOKafkaConsumer:
    # Offsets are committed by hand, only after a batch's output is durable.
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset=auto_offset_reset,
        max_partition_fetch_bytes=max_partition_fetch_bytes,
        # Commit failures on revoked partitions are expected during a
        # rebalance; the loop handles them, so keep sessions short-lived.
        session_timeout_ms=session_timeout_ms,
        # Kafka wants several heartbeats per session.
        heartbeat_interval_ms=min(3_000, session_timeout_ms // 3),
        max_poll_interval_ms=300_000,
    )


def event_message(topic: str, event: Event, key: str, headers: tuple[tuple[str, bytes], ...] = ()) -> Outgoing:
    return Outgoing(topic=topic, value=event.to_bytes(), key=key.encode(), headers=headers)


async def send_all(producer: AIOKafkaProducer, messages: Iterable[Outgoing]) -> int:
    """Send every message and wait until each one is acknowledged."""
    return sum((await send_batched(producer, messages)).values())
