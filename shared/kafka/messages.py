"""What a handler gets and gives back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiokafka.structs import ConsumerRecord


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    value: bytes | None  # None: a tombstone on a compacted topic
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
    # Durable side effects not yet started (e.g. a PostgreSQL write). The
    # loop runs them concurrently with sending ``outputs`` and commits only
    # after both are done, so I/O waits on the database and the broker overlap.
    effects: list[Coroutine[Any, Any, Any]] = field(default_factory=list)

    def discard_effects(self) -> None:
        for effect in self.effects:
            effect.close()
        self.effects.clear()


Handler = Callable[[list[ConsumerRecord]], Awaitable[HandlerResult]]
