"""Synthetic people with a learnable income.

Income grows with education, with experience (concavely: it flattens late in
a career) and with hours worked, times a little multiplicative noise. Names
and cities come from Faker pools drawn once, so a batch costs numpy work
plus one dict per person.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from services.generator.base import BlockSource, seeded_faker, seeded_rng, unique_pool
from shared.streams import PEOPLE, StreamSpec

NAME_POOL = 1000
CITY_POOL = 200
INCOME_NOISE = 0.08  # sd of the log-normal multiplier


def expected_income(
    years_education: np.ndarray, experience_years: np.ndarray, hours_per_week: np.ndarray
) -> np.ndarray:
    """The noiseless relation, for tests and documentation."""
    return (
        9000.0
        + 2800.0 * years_education
        + 1200.0 * experience_years
        - 15.0 * experience_years**2
        + 550.0 * (hours_per_week - 40.0)
    ).clip(min=1000.0)


class PeopleSource(BlockSource):
    spec: StreamSpec = PEOPLE

    def __init__(self, seed: int) -> None:
        super().__init__()
        self._rng = seeded_rng(seed, self.spec.name)
        fake = seeded_faker(seed)
        self.names = unique_pool(fake.name, NAME_POOL)
        self.cities = unique_pool(fake.city, CITY_POOL)
        self._id_prefix = f"p{seed & 0xFFFF:04x}"
        self._serial = 0

    def _block(self, n: int) -> list[dict[str, Any]]:
        rng = self._rng
        age = rng.integers(18, 76, n)
        education = np.clip(np.rint(rng.normal(14, 3, n)), 6, 22)
        education = np.minimum(education, age - 12)
        experience = np.clip(age - education - 6 - rng.uniform(0, 4, n), 0, 60)
        hours = np.clip(rng.normal(40, 8, n), 5, 80)
        income = expected_income(education, experience, hours) * rng.lognormal(0, INCOME_NOISE, n)
        income = income * (1.0 + self.drift)
        name = rng.integers(0, len(self.names), n).tolist()
        city = rng.integers(0, len(self.cities), n).tolist()
        first = self._serial
        self._serial += n
        prefix, names, cities = self._id_prefix, self.names, self.cities
        return [
            {
                "person_id": f"{prefix}-{first + i:09d}",
                "name": names[name[i]],
                "city": cities[city[i]],
                "age": a,
                "years_education": e,
                "hours_per_week": h,
                "experience_years": x,
                "income": y,
            }
            for i, (a, e, h, x, y) in enumerate(
                zip(
                    age.tolist(),
                    education.astype(np.int64).tolist(),
                    np.round(hours, 1).tolist(),
                    np.round(experience, 1).tolist(),
                    np.round(income, 2).tolist(),
                )
            )
        ]
