"""Dead letters: the original bytes, with where they came from and why in headers."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka.structs import ConsumerRecord

from shared.kafka.messages import Outgoing

ORIGIN_TOPIC = "fluxo.origin.topic"
ORIGIN_PARTITION = "fluxo.origin.partition"
ORIGIN_OFFSET = "fluxo.origin.offset"
ERROR = "fluxo.error"
SERVICE = "fluxo.service"
FAILED_AT = "fluxo.failed_at"

_MAX_REASON_BYTES = 2000


def dead_letter(record: ConsumerRecord, reason: str, deadletter_topic: str, service: str) -> Outgoing:
    headers = (
        (ORIGIN_TOPIC, record.topic.encode()),
        (ORIGIN_PARTITION, str(record.partition).encode()),
        (ORIGIN_OFFSET, str(record.offset).encode()),
        (ERROR, reason.encode()[:_MAX_REASON_BYTES]),
        (SERVICE, service.encode()),
        (FAILED_AT, datetime.now(UTC).isoformat().encode()),
    )
    return Outgoing(topic=deadletter_topic, value=record.value or b"", key=record.key, headers=headers)


def read_headers(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> dict[str, str]:
    return {name: value.decode(errors="replace") for name, value in headers or ()}
