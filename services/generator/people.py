"""Simulator ``people``: synthetic people with a learnable income.

Earnings grow with schooling, with career years (concavely: they flatten
late in a career) and with weekly hours worked, times a little
multiplicative noise. Names and towns come from Faker pools drawn once, so a
batch costs numpy work plus one dict per person.

Roles: ``person`` (an id), ``full_name``, ``home_town``, ``age_years``,
``schooling`` (years of education), ``weekly_hours``, ``career_years`` and
``earnings`` (a year's income).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from services.generator.base import BlockSource, seeded_faker, seeded_rng, unique_pool
from shared.streams import StreamSpec

NAME_POOL = 1000
CITY_POOL = 200
INCOME_NOISE = 0.08  # sd of the log-normal multiplier


def expected_earnings(schooling: np.ndarray, career_years: np.ndarray, weekly_hours: np.ndarray) -> np.ndarray:
    """The noiseless relation, for tests and documentation."""
    return (
        9000.0
        + 2800.0 * schooling
        + 1200.0 * career_years
        - 15.0 * career_years**2
        + 550.0 * (weekly_hours - 40.0)
    ).clip(min=1000.0)


class PeopleSource(BlockSource):
    ROLES = ("person", "full_name", "home_town", "age_years", "schooling", "weekly_hours", "career_years", "earnings")

    def __init__(self, spec: StreamSpec, seed: int) -> None:
        super().__init__(spec)
        self._rng = seeded_rng(seed, spec.name)
        fake = seeded_faker(seed)
        self.names = unique_pool(fake.name, NAME_POOL)
        self.cities = unique_pool(fake.city, CITY_POOL)
        self._id_prefix = f"p{seed & 0xFFFF:04x}"
        self._serial = 0

    def _block(self, n: int) -> dict[str, list[Any]]:
        rng = self._rng
        age = rng.integers(18, 76, n)
        schooling = np.clip(np.rint(rng.normal(14, 3, n)), 6, 22)
        schooling = np.minimum(schooling, age - 12)
        career = np.clip(age - schooling - 6 - rng.uniform(0, 4, n), 0, 60)
        hours = np.clip(rng.normal(40, 8, n), 5, 80)
        earnings = expected_earnings(schooling, career, hours) * rng.lognormal(0, INCOME_NOISE, n)
        earnings = earnings * (1.0 + self.drift)
        name = rng.integers(0, len(self.names), n).tolist()
        city = rng.integers(0, len(self.cities), n).tolist()
        first = self._serial
        self._serial += n
        return {
            "person": [f"{self._id_prefix}-{first + i:09d}" for i in range(n)],
            "full_name": [self.names[i] for i in name],
            "home_town": [self.cities[i] for i in city],
            "age_years": age.tolist(),
            "schooling": schooling.astype(np.int64).tolist(),
            "weekly_hours": np.round(hours, 1).tolist(),
            "career_years": np.round(career, 1).tolist(),
            "earnings": np.round(earnings, 2).tolist(),
        }
