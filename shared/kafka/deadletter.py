"""Dead letters: the original bytes, with where they came from and why in headers."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka.structs import ConsumerRecord

from shared.kafka.messages import Outgoing
from shared.kafka.send import message_size

ORIGIN_TOPIC = "fluxo.origin.topic"
ORIGIN_PARTITION = "fluxo.origin.partition"
ORIGIN_OFFSET = "fluxo.origin.offset"
ERROR = "fluxo.error"
SERVICE = "fluxo.service"
FAILED_AT = "fluxo.failed_at"
# Set when the original value (or key) was cut to fit the dead-letter topic:
# the original length in bytes. The reason and origin headers are never cut
# (the reason is capped on its own), so the offset still finds the original.
TRUNCATED = "fluxo.truncated"

_MAX_REASON_BYTES = 2000


def dead_letter(record: ConsumerRecord, reason: str, deadletter_topic: str, service: str) -> Outgoing:
    return dead_letter_of(record.topic, record.partition, record.offset, record.key, record.value, reason,
                          deadletter_topic, service)


def dead_letter_of(topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, reason: str,
                   deadletter_topic: str, service: str) -> Outgoing:
    """A dead letter of a message kept elsewhere first (e.g. a label held back
    while its event was awaited)."""
    headers = (
        (ORIGIN_TOPIC, topic.encode()),
        (ORIGIN_PARTITION, str(partition).encode()),
        (ORIGIN_OFFSET, str(offset).encode()),
        (ERROR, reason.encode()[:_MAX_REASON_BYTES]),
        (SERVICE, service.encode()),
        (FAILED_AT, datetime.now(UTC).isoformat().encode()),
    )
    return Outgoing(topic=deadletter_topic, value=value or b"", key=key, headers=headers)


def fit(message: Outgoing, limit: int) -> Outgoing:
    """``message`` cut to at most ``limit`` bytes: the value first, then the
    key, with a header giving the original value's length."""
    if message_size(message) <= limit:
        return message
    headers = (*message.headers, (TRUNCATED, str(len(message.value)).encode()))
    cut = Outgoing(message.topic, b"", message.key, headers)
    # Less the varints that grow with the value's length (at most 5 bytes each).
    room = limit - message_size(cut) - 10
    if room < 0:  # the key alone is too large: drop it too (the origin headers still locate the record)
        cut = Outgoing(message.topic, b"", None, headers)
        room = limit - message_size(cut) - 10
    return Outgoing(message.topic, message.value[: max(room, 0)], cut.key, headers)


def read_headers(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> dict[str, str]:
    return {name: value.decode(errors="replace") for name, value in headers or ()}
