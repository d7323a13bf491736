"""Synthetic water-network pressure sensors with labelled anomalies.

N sensors with fixed coordinates, grouped in neighbourhoods around a city.
Readings go round-robin over the sensors; each round is one simulated time
step (``sim_step`` seconds), so hourly and 30-day windows fill up in minutes
of wall time. A reading is the sensor's level plus a daily cycle (highest at
night, lowest mid-afternoon when demand peaks) plus noise.

Anomalies come in episodes and every reading inside one is labelled
``anomaly: true``: drops (a fraction of the normal value), bursts (well
above it) and flat lines (a stuck, noiseless value below the sensor's
normal range). Episode starts are drawn so that, in the long run, the
fraction of anomalous readings is ``anomaly_rate``.

Roles: ``device`` (a sensor id), ``at`` (the reading's time), ``level``
(pressure, metres of water column), ``lat`` and ``lon`` (the sensor's place),
``district`` (its neighbourhood), ``device_kind`` (residential, industrial or
trunk_main) and ``abnormal`` (the anomaly label).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from services.generator.base import BlockSource, seeded_faker, seeded_rng, unique_pool
from services.generator.clock import SimClock
from shared.streams import StreamSpec

SENSOR_TYPES = ("residential", "industrial", "trunk_main")
# kind: (shortest, longest) episode length in readings
EPISODES = {"drop": (1, 4), "burst": (1, 3), "flat": (4, 12)}
KINDS = tuple(EPISODES)
MEAN_EPISODE = float(np.mean([(lo + hi) / 2 for lo, hi in EPISODES.values()]))
NOISE = 0.8
MAX_PRESSURE = 200.0


class WaterPressureSource(BlockSource):
    ROLES = ("device", "at", "level", "lat", "lon", "district", "device_kind", "abnormal")

    def __init__(
        self,
        spec: StreamSpec,
        seed: int,
        sensors: int = 20,
        anomaly_rate: float = 0.03,
        sim_start: datetime | None = None,
        sim_step: float = 300.0,
    ) -> None:
        if not 0 <= anomaly_rate < 1:
            raise ValueError("anomaly_rate must be in [0, 1)")
        super().__init__(spec)
        self.anomaly_rate = anomaly_rate
        self._rng = rng = seeded_rng(seed, spec.name)
        self._anomaly_rng = seeded_rng(seed, spec.name, "anomalies")
        fake = seeded_faker(seed)
        self.clock = SimClock.of(sim_start, sim_step)

        self.sensor_ids = [f"S{seed & 0xFFFF:04x}-{i:05d}" for i in range(sensors)]
        center_lat, center_lon = (float(x) for x in fake.local_latlng(country_code="US", coords_only=True))
        hoods = unique_pool(fake.street_name, max(2, sensors // 5))
        hood_lat = center_lat + rng.normal(0, 0.04, len(hoods))
        hood_lon = center_lon + rng.normal(0, 0.04, len(hoods))
        hood_of = rng.integers(0, len(hoods), sensors)
        self.neighbourhood = [hoods[h] for h in hood_of.tolist()]
        self.latitude = np.round(np.clip(hood_lat[hood_of] + rng.normal(0, 0.005, sensors), -90, 90), 6).tolist()
        self.longitude = np.round(np.clip(hood_lon[hood_of] + rng.normal(0, 0.005, sensors), -180, 180), 6).tolist()
        self.device_kinds = [SENSOR_TYPES[t] for t in rng.integers(0, len(SENSOR_TYPES), sensors).tolist()]
        self.level = rng.uniform(35, 65, sensors)
        self.amplitude = rng.uniform(4, 10, sensors)
        self.phase = rng.normal(0, 1.0, sensors)  # hours; not every district peaks at once

        self._cursor = 0  # readings made so far
        # Per sensor: readings left in the current episode, its kind and parameter.
        self._left = [0] * sensors
        self._kind = [""] * sensors
        self._param = [0.0] * sensors
        # An episode starts with this chance at each reading outside one:
        # with mean length L, the long-run anomalous fraction is then
        # L*p / (L*p + 1 - p) = anomaly_rate.
        self._start_p = anomaly_rate / (MEAN_EPISODE * (1 - anomaly_rate) + anomaly_rate)

    def _block(self, n: int) -> dict[str, list[Any]]:
        count = len(self.sensor_ids)
        index = np.arange(self._cursor, self._cursor + n)
        self._cursor += n
        sensor = index % count
        tick = index // count
        hours_of_day = self.clock.hours_of_day(tick)
        angle = 2 * np.pi * (hours_of_day - 3.0 - self.phase[sensor]) / 24.0
        normal = self.level[sensor] * (1.0 + self.drift) + self.amplitude[sensor] * np.cos(angle)
        normal = normal + self._rng.normal(0, NOISE, n)
        values, labels = self._anomalies(sensor.tolist(), normal.tolist())
        values = np.round(np.clip(values, 0, MAX_PRESSURE), 3).tolist()
        stamps = {t: self.clock.at(t).isoformat() for t in np.unique(tick).tolist()}
        sensors = sensor.tolist()
        return {
            "device": [self.sensor_ids[s] for s in sensors],
            "at": [stamps[t] for t in tick.tolist()],
            "level": values,
            "lat": [self.latitude[s] for s in sensors],
            "lon": [self.longitude[s] for s in sensors],
            "district": [self.neighbourhood[s] for s in sensors],
            "device_kind": [self.device_kinds[s] for s in sensors],
            "abnormal": labels,
        }

    def _anomalies(self, sensors: list[int], values: list[float]) -> tuple[np.ndarray, list[bool]]:
        rng = self._anomaly_rng
        n = len(sensors)
        starts = (rng.random(n) < self._start_p).tolist()
        labels = [False] * n
        out = np.asarray(values, dtype=np.float64)
        for i, s in enumerate(sensors):
            if self._left[s] == 0:
                if not starts[i]:
                    continue
                self._begin(s)
            self._left[s] -= 1
            labels[i] = True
            kind, param = self._kind[s], self._param[s]
            if kind == "flat":
                out[i] = param
            else:
                out[i] = values[i] * param
        return out, labels

    def _begin(self, sensor: int) -> None:
        rng = self._anomaly_rng
        kind = KINDS[int(rng.integers(0, len(KINDS)))]
        lo, hi = EPISODES[kind]
        self._left[sensor] = int(rng.integers(lo, hi + 1))
        self._kind[sensor] = kind
        if kind == "drop":
            self._param[sensor] = float(rng.uniform(0.2, 0.55))
        elif kind == "burst":
            self._param[sensor] = float(rng.uniform(1.5, 2.0))
        else:
            low = self.level[sensor] * (1.0 + self.drift) - self.amplitude[sensor]
            self._param[sensor] = round(max(low - float(rng.uniform(6, 15)), 0.0), 1)
