"""What a handler gets and gives back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka.structs import ConsumerRecord


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input the handler cannot process, ever: it goes to the dead-letter topic."""

    record: ConsumerRecord
    reason: str


@dataclass(slots=True)
class HandlerResult:
    outputs: list[Outgoing] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


Handler = Callable[[list[ConsumerRecord]], Awaitable[HandlerResult]]
