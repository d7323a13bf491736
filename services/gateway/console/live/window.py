"""What the console keeps of one stream's recent events: pure, no I/O.

The latest features events by id (to show an event's context and values
beside its predictions), running totals of the stream's additive
quantities, and the recent dead letters of its topics.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.streams import StreamSpec

DEAD_LETTERS_KEPT = 200


def totalled_columns(spec: StreamSpec) -> tuple[tuple[str, str], ...]:
    """(column, unit) of the derived columns worth a total: those declaring a unit.

    A unit says the column is a quantity (energy, mass, money); a ratio such
    as EUR/m2 or a percentage is not additive, so it is left out.
    """
    return tuple(
        (derived.name, derived.unit)
        for derived in spec.derived
        if derived.unit and "/" not in derived.unit and "%" not in derived.unit
    )


@dataclass(frozen=True)
class DeadLetter:
    at: float  # unix seconds (the dead letter's Kafka timestamp)
    origin: str
    reason: str


@dataclass
class Total:
    column: str
    unit: str
    value: float = 0.0
    events: int = 0  # events that carried the column


@dataclass
class StreamWindow:
    """One stream's recent events; ``add`` takes a features event as decoded JSON."""

    totals: dict[str, Total]
    size: int = 2000
    events: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    dead_letters: deque[DeadLetter] = field(default_factory=lambda: deque(maxlen=DEAD_LETTERS_KEPT))
    counted: int = 0
    first_produced_at: str | None = None

    @classmethod
    def of(cls, spec: StreamSpec, size: int) -> StreamWindow:
        return cls(totals={name: Total(name, unit) for name, unit in totalled_columns(spec)}, size=size)

    def add(self, event: dict[str, Any]) -> None:
        event_id = event.get("event_id")
        if not isinstance(event_id, str):
            return
        if event_id in self.events:  # a redelivered event is counted once
            self.events.move_to_end(event_id)
            return
        self.events[event_id] = event
        while len(self.events) > self.size:
            self.events.popitem(last=False)
        self.counted += 1
        if self.first_produced_at is None:
            self.first_produced_at = event.get("raw_produced_at") or event.get("produced_at")
        features = event.get("features") or {}
        for total in self.totals.values():
            value = features.get(total.column)
            if isinstance(value, int | float):
                total.value += value
                total.events += 1

    def event(self, event_id: str) -> dict[str, Any] | None:
        return self.events.get(event_id)

    def latest(self, count: int) -> list[dict[str, Any]]:
        return list(reversed(list(self.events.values())[-count:]))

    def add_dead_letter(self, letter: DeadLetter) -> None:
        self.dead_letters.append(letter)

    def dead_letter_rate(self, now: float, horizon: float = 60.0) -> float:
        """Dead letters per second over the last ``horizon`` seconds."""
        return sum(1 for letter in self.dead_letters if letter.at > now - horizon) / horizon

    def since(self) -> datetime | None:
        if self.first_produced_at is None:
            return None
        try:
            return datetime.fromisoformat(self.first_produced_at)
        except ValueError:
            return None
