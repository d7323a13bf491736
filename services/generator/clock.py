"""Simulated time for simulators that step through it: round ``tick`` (each
device read once) happens at ``start + tick * step``, so hourly, daily and
weekly patterns show within minutes of wall time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np


@dataclass(frozen=True)
class SimClock:
    start: datetime
    step: timedelta

    @classmethod
    def of(cls, start: datetime | None, step_seconds: float) -> SimClock:
        """``start`` defaults to the current hour; a naive one is taken as UTC."""
        start = start or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        return cls(start if start.tzinfo else start.replace(tzinfo=UTC), timedelta(seconds=step_seconds))

    @property
    def step_hours(self) -> float:
        return self.step.total_seconds() / 3600.0

    def at(self, tick: int) -> datetime:
        return self.start + tick * self.step

    def hours_of_day(self, ticks: np.ndarray) -> np.ndarray:
        """Fractional hour of day (0 to 24) of each tick."""
        start_hour = self.start.hour + self.start.minute / 60
        return (ticks * self.step.total_seconds() / 3600.0 + start_hour) % 24
