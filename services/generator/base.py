"""What every record source offers the generator loop, and the binding of a
simulator's outputs to a stream's fields.

A simulator is a physical model with its own vocabulary of outputs, its
*roles* (an energy mix's ``renewables``, a sensor's ``level``). The stream's
declaration binds roles to field names (``simulation.bind``), so no
simulator knows what a stream calls its fields; an unbound role is left out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

import numpy as np
from faker import Faker

from shared.streams import StreamSpec


class Source(Protocol):
    spec: StreamSpec
    # Relative shift applied while drifting (0 = the normal distribution).
    drift: float

    def next_batch(self, n: int) -> list[dict[str, Any]]:
        """Up to ``n`` records (the stream's fields); fewer only when a finite source runs out."""
        ...


class SimulationInvalid(ValueError):
    """A declaration's simulation block that this generator cannot run."""


def binding(spec: StreamSpec, roles: Sequence[str]) -> dict[str, str]:
    """The declared role -> field pairs, checked against the simulator's ``roles``."""
    if spec.simulation is None:
        raise SimulationInvalid(f"stream {spec.name!r} declares no simulation")
    unknown = sorted(set(spec.simulation.bind) - set(roles))
    if unknown:
        raise SimulationInvalid(
            f"stream {spec.name!r}: simulator {spec.simulation.source!r} has no role {', '.join(map(repr, unknown))} "
            f"(roles: {', '.join(roles)})"
        )
    return dict(spec.simulation.bind)


class BlockSource:
    """Draws records in fixed-size blocks, so the sequence a seed gives does
    not depend on how the caller batches (which depends on timing).

    A subclass names its ``ROLES`` and draws a block as columns by role
    (:meth:`_block`); the bound ones become the records' fields.
    Changing ``drift`` discards the unsent rest of the current block, so the
    shift shows at once even at low rates.
    """

    BLOCK = 64
    ROLES: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: StreamSpec) -> None:
        self.spec = spec
        bind = binding(spec, self.ROLES)
        self._roles = tuple(bind)
        self._fields = tuple(bind.values())
        self._drift = 0.0
        self._buffer: deque[dict[str, Any]] = deque()

    @property
    def drift(self) -> float:
        return self._drift

    @drift.setter
    def drift(self, value: float) -> None:
        if value != self._drift:
            self._buffer.clear()
        self._drift = value

    def next_batch(self, n: int) -> list[dict[str, Any]]:
        buffer, fields = self._buffer, self._fields
        while len(buffer) < n:
            columns = self._block(self.BLOCK)
            buffer.extend(dict(zip(fields, row)) for row in zip(*(columns[role] for role in self._roles)))
        return [buffer.popleft() for _ in range(n)]

    def _block(self, n: int) -> Mapping[str, Sequence[Any]]:
        """About ``n`` records as equally long columns, one per role."""
        raise NotImplementedError


def seeded_rng(seed: int, stream: str, purpose: str = "values") -> np.random.Generator:
    """An independent, reproducible generator per (seed, stream, purpose), so
    e.g. turning invalid events on does not change the valid ones."""
    return np.random.default_rng([seed, *stream.encode(), *purpose.encode()])


def seeded_faker(seed: int, locale: str = "en_US") -> Faker:
    fake = Faker(locale)
    fake.seed_instance(seed)
    return fake


def unique_pool(make: Any, size: int, attempts: int = 20) -> list[str]:
    """``size`` distinct values from a Faker provider (fewer if it has fewer)."""
    seen: dict[str, None] = {}
    for _ in range(size * attempts):
        seen.setdefault(make(), None)
        if len(seen) == size:
            break
    return list(seen)
