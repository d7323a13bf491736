"""Simulator ``energy_mix``: synthetic country energy mixes.

Each region (a country) belongs to one of three profiles (mostly renewable,
mixed with nuclear, mostly fossil) with its own fixed mix; a record is one
period (a year) of one region: its mix plus a little noise. Carbon intensity
of electricity follows the fossil share linearly (with a per-region factor
and noise), so KMeans finds the three profiles and a regressor learns carbon
from the shares.

Roles: ``region``, ``period`` (a year), the ``renewables``, ``fossil`` and
``nuclear`` shares of primary energy (%), ``carbon`` (gCO2/kWh).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from services.generator.base import BlockSource, seeded_faker, seeded_rng, unique_pool
from shared.streams import StreamSpec

# (renewables mean, nuclear mean) per profile; fossil is what remains.
PROFILES = ((70.0, 8.0), (25.0, 25.0), (6.0, 3.0))
CARBON_BASE = 15.0  # gCO2/kWh with no fossil generation at all
CARBON_PER_FOSSIL_POINT = 8.0
CARBON_NOISE = 20.0
SHARE_NOISE = 2.0


class EnergyMixSource(BlockSource):
    ROLES = ("region", "period", "renewables", "fossil", "nuclear", "carbon")

    def __init__(self, spec: StreamSpec, seed: int, countries: int = 40) -> None:
        super().__init__(spec)
        self._rng = rng = seeded_rng(seed, spec.name)
        self.countries = unique_pool(seeded_faker(seed).country, countries)
        n = len(self.countries)
        self.profile = np.arange(n) % len(PROFILES)
        means = np.asarray(PROFILES)[self.profile]
        self._renewables = np.clip(means[:, 0] + rng.normal(0, 5, n), 1, 95)
        self._nuclear = np.clip(means[:, 1] + rng.normal(0, 4, n), 0, 60)
        self._carbon_factor = rng.normal(1.0, 0.04, n)

    def _block(self, n: int) -> dict[str, list[Any]]:
        rng = self._rng
        country = rng.integers(0, len(self.countries), n)
        year = rng.integers(1990, 2025, n)
        renewables = np.clip(self._renewables[country] + rng.normal(0, SHARE_NOISE, n), 0, 100)
        nuclear = np.clip(self._nuclear[country] + rng.normal(0, SHARE_NOISE / 2, n), 0, 100)
        other = rng.uniform(0, 3, n)
        fossil = np.clip(100.0 - renewables - nuclear - other, 0, 100)
        carbon = (CARBON_BASE + CARBON_PER_FOSSIL_POINT * fossil) * self._carbon_factor[country]
        carbon = carbon * (1.0 + self.drift) + rng.normal(0, CARBON_NOISE, n)
        carbon = np.clip(carbon, 0, 2000)
        names = self.countries
        return {
            "region": [names[c] for c in country.tolist()],
            "period": year.tolist(),
            "renewables": np.round(renewables, 3).tolist(),
            "fossil": np.round(fossil, 3).tolist(),
            "nuclear": np.round(nuclear, 3).tolist(),
            "carbon": np.round(carbon, 2).tolist(),
        }
