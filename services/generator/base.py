"""What every record source offers the generator loop."""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

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


class BlockSource:
    """Draws records in fixed-size blocks, so the sequence a seed gives does
    not depend on how the caller batches (which depends on timing).

    Changing ``drift`` discards the unsent rest of the current block, so the
    shift shows at once even at low rates.
    """

    BLOCK = 64

    def __init__(self) -> None:
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
        buffer = self._buffer
        while len(buffer) < n:
            buffer.extend(self._block(self.BLOCK))
        return [buffer.popleft() for _ in range(n)]

    def _block(self, n: int) -> list[dict[str, Any]]:
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
