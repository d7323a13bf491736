"""The arithmetic of the figures, kept pure so it is tested on its own."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Rate:
    events: int  # all events in the output
    counted: int  # events after the first output instant
    seconds: float  # first output instant to last
    events_per_s: float

    def as_dict(self) -> dict[str, float]:
        return {
            "events": self.events,
            "events_counted": self.counted,
            "seconds": round(self.seconds, 3),
            "events_per_s": round(self.events_per_s, 1),
        }


def sustained_rate(points: Iterable[tuple[float, int]]) -> Rate:
    """Events per second from output instants: ``points`` are (time in
    seconds, events that became output at that instant).

    The clock starts at the first output, so process start-up, group joins
    and the first fetch never count; the events output at that first
    instant are left out too, since the work that produced them happened
    before it. What remains is (events after the first instant) / (last
    instant - first instant).
    """
    merged: dict[float, int] = {}
    for when, count in points:
        merged[when] = merged.get(when, 0) + count
    if not merged:
        return Rate(0, 0, 0.0, 0.0)
    times = sorted(merged)
    total = sum(merged.values())
    counted = total - merged[times[0]]
    seconds = times[-1] - times[0]
    return Rate(total, counted, seconds, counted / seconds if seconds > 0 else 0.0)


def latency_summary(milliseconds: Sequence[float] | np.ndarray) -> dict[str, float]:
    values = np.asarray(milliseconds, dtype=np.float64)
    if not len(values):
        return {"count": 0}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        "count": int(len(values)),
        "p50": round(float(p50), 2),
        "p90": round(float(p90), 2),
        "p99": round(float(p99), 2),
        "max": round(float(values.max()), 2),
        "mean": round(float(values.mean()), 2),
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)
