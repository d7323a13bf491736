"""What every record source offers the generator loop."""

from __future__ import annotations

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
