"""Simulator ``household_devices``: household appliances and their meters.

Households in one city each own a fridge and lights, and some of the other
appliances, each with its own rated power. Time advances one simulated step
per round, like the pressure sensors; in a round every household reports
each appliance it used during the step: how long it was on and the energy
its meter counted.

When an appliance is used follows the clock and the weather: lights in the
morning and the evening, the washing machine mostly on weekend mornings,
ovens at meal times, heaters when it is cold and air conditioners when it is
hot; a fridge runs all the time. What an appliance draws while on is its
rated power times a duty cycle: thermostats (fridge, heater, air
conditioner) work harder the further the weather is from comfort, lights
dim at night, weekend washes are hotter, a computer works harder in office
hours. So the metered energy is the nominal one (rated power x hours on)
times a duty cycle set by the appliance, the hour, the day and the
temperature, times a little noise: learnable from those, and not a copy of
the nominal energy. Drift scales what the meters count.

The outside temperature has a seasonal and a daily cycle (coldest late in
January and before dawn) plus weather that wanders over a few days.

Roles: ``home`` (a household id), ``appliance`` (its type), ``rated_watts``,
``on_hours`` (hours on during the step), ``at`` (the step's start),
``outdoor_c`` (outside temperature, °C), ``band`` (time-of-use tariff:
peak or off_peak) and ``metered`` (kWh).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from services.generator.base import BlockSource, seeded_rng
from services.generator.clock import SimClock
from shared.streams import StreamSpec

SEASON_MEAN_C = 11.0
SEASON_SWING_C = 8.0  # coldest around 20 January
DAY_SWING_C = 5.0  # warmest at 15:00
WEATHER_SD_C = 3.0
WEATHER_DAYS = 3.0  # how long a warm or cold spell lasts
METER_NOISE = 0.08  # sd of the log-normal multiplier
PEAK_HOURS = range(8, 22)  # weekdays; nights and weekends are off-peak


def by_hour(rest: float, spans: dict[tuple[int, int], float] | None = None) -> tuple[float, ...]:
    """A value per hour of the day: ``rest``, except in the (from, to) spans (to excluded)."""
    values = [rest] * 24
    for (first, end), value in (spans or {}).items():
        values[first:end] = [value] * (end - first)
    return tuple(values)


def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


@dataclass(frozen=True)
class Appliance:
    watts: tuple[float, float]  # range of rated power
    owned: float  # share of households that have one
    weekday: tuple[float, ...]  # chance of use per hour of the day
    weekend: tuple[float, ...]
    # (hour, weekend, temperature) -> share of rated power drawn while on
    duty: Callable[[int, bool, float], float]
    weather: Callable[[float], float] = lambda temp: 1.0  # temperature -> factor on the chance of use
    always_on: bool = False  # on for the whole step (else for a random half to all of it)


# Heating set point: lowered at night, boosted to warm the house up in the morning.
THERMOSTAT_C = by_hour(18, {(0, 6): 13, (6, 9): 22, (17, 23): 20})
LIGHTS = {(0, 6): 0.05, (6, 9): 0.5, (17, 24): 0.85}

APPLIANCES: dict[str, Appliance] = {
    "fridge": Appliance(
        watts=(100, 250), owned=1.0, weekday=by_hour(1.0), weekend=by_hour(1.0), always_on=True,
        # The compressor runs more when the kitchen is warmer.
        duty=lambda hour, weekend, temp: _clip(0.3 + 0.012 * (temp - 10), 0.2, 0.6),
    ),
    "heater": Appliance(
        watts=(1500, 2200), owned=0.6,
        weekday=by_hour(0.5, {(0, 6): 0.3, (6, 9): 1.0, (17, 24): 1.0}),
        weekend=by_hour(0.8, {(0, 6): 0.3, (17, 24): 1.0}),
        weather=lambda temp: _clip((18 - temp) / 6, 0.0, 1.0),
        duty=lambda hour, weekend, temp: _clip((THERMOSTAT_C[hour] - temp) / 30, 0.1, 1.0),
    ),
    "air_conditioner": Appliance(
        watts=(800, 3000), owned=0.4,
        weekday=by_hour(0.3, {(13, 23): 1.0}),
        weekend=by_hour(0.4, {(11, 23): 1.0}),
        weather=lambda temp: _clip((temp - 22) / 8, 0.0, 1.0),
        duty=lambda hour, weekend, temp: _clip((temp - 20) / 12, 0.2, 1.0),
    ),
    "washing_machine": Appliance(
        watts=(2000, 2400), owned=0.85,
        weekday=by_hour(0.01, {(18, 22): 0.08}),
        weekend=by_hour(0.01, {(8, 20): 0.1, (9, 13): 0.35}),
        # Hot washes at weekends, eco ones in the week; colder water takes more heating.
        duty=lambda hour, weekend, temp: _clip((0.7 if weekend else 0.25) + 0.01 * (15 - temp), 0.15, 0.95),
    ),
    "lighting": Appliance(
        watts=(40, 300), owned=1.0, weekday=by_hour(0.1, LIGHTS), weekend=by_hour(0.2, LIGHTS),
        # Dimmed at night.
        duty=lambda hour, weekend, temp: 0.6 if hour >= 23 or hour < 6 else 0.95,
    ),
    "tv": Appliance(
        watts=(60, 250), owned=0.9,
        weekday=by_hour(0.05, {(19, 24): 0.7}),
        weekend=by_hour(0.05, {(10, 19): 0.3, (19, 24): 0.8}),
        # Brighter screen by day.
        duty=lambda hour, weekend, temp: 0.85 if 8 <= hour < 19 else 0.5,
    ),
    "computer": Appliance(
        watts=(60, 450), owned=0.75,
        weekday=by_hour(0.03, {(9, 18): 0.5, (18, 24): 0.4}),
        weekend=by_hour(0.03, {(10, 24): 0.35}),
        # Working hard in office hours, browsing otherwise.
        duty=lambda hour, weekend, temp: 0.7 if not weekend and 9 <= hour < 18 else 0.3,
    ),
    "oven": Appliance(
        watts=(2000, 3000), owned=0.7,
        weekday=by_hour(0.01, {(12, 14): 0.25, (18, 21): 0.4}),
        weekend=by_hour(0.01, {(11, 14): 0.45, (18, 21): 0.4}),
        # Reheating at lunch, cooking at dinner, roasting at weekends.
        duty=lambda hour, weekend, temp: 0.8 if weekend else 0.3 if hour < 15 else 0.55,
    ),
}
KINDS = tuple(APPLIANCES)


def outside_temperature(at: datetime, weather: float) -> float:
    """°C at ``at``: the seasonal and daily cycles plus the weather's deviation."""
    day = at.timetuple().tm_yday + at.hour / 24
    season = SEASON_MEAN_C - SEASON_SWING_C * math.cos(2 * math.pi * (day - 20) / 365.25)
    daily = DAY_SWING_C * math.cos(2 * math.pi * (at.hour + at.minute / 60 - 15) / 24)
    return season + daily + weather


class HouseholdDevicesSource(BlockSource):
    ROLES = ("home", "appliance", "rated_watts", "on_hours", "at", "outdoor_c", "band", "metered")

    def __init__(
        self,
        spec: StreamSpec,
        seed: int,
        households: int = 25,
        sim_start: datetime | None = None,
        sim_step: float = 300.0,
    ) -> None:
        super().__init__(spec)
        self._rng = rng = seeded_rng(seed, spec.name)
        self.clock = SimClock.of(sim_start, sim_step)
        self.household_ids = [f"H{seed & 0xFFFF:04x}-{i:05d}" for i in range(households)]
        owns = rng.random((households, len(KINDS))) < [APPLIANCES[kind].owned for kind in KINDS]
        self.home, self.kind = np.nonzero(owns)  # one entry per appliance in a home
        low, high = np.array([APPLIANCES[kind].watts for kind in KINDS]).T
        self.watts = np.round(rng.uniform(low[self.kind], high[self.kind]))
        self._always_on = np.array([APPLIANCES[kind].always_on for kind in KINDS])[self.kind]
        # AR(1) weather: each step keeps this much of the last deviation.
        self._persistence = math.exp(-self.clock.step.total_seconds() / (WEATHER_DAYS * 86400))
        self._weather = float(rng.normal(0, WEATHER_SD_C))
        self._tick = 0

    def _block(self, n: int) -> dict[str, list[Any]]:
        """One round: every appliance used during the step (at least the fridges)."""
        rng, at = self._rng, self.clock.at(self._tick)
        self._tick += 1
        keep = self._persistence
        self._weather = keep * self._weather + float(rng.normal(0, WEATHER_SD_C * math.sqrt(1 - keep**2)))
        temp = round(outside_temperature(at, self._weather), 1)
        hour, weekend = at.hour, at.weekday() >= 5
        appliances = [APPLIANCES[kind] for kind in KINDS]
        chance = np.array([(a.weekend if weekend else a.weekday)[hour] * a.weather(temp) for a in appliances])
        duty = np.array([a.duty(hour, weekend, temp) for a in appliances])
        count = len(self.kind)
        used = rng.random(count) < chance[self.kind]
        share_on = np.where(self._always_on, 1.0, rng.uniform(0.5, 1.0, count))
        noise = rng.lognormal(0, METER_NOISE, count)
        hours = np.round(share_on * self.clock.step_hours, 4)
        metered = self.watts * hours / 1000 * duty[self.kind] * noise * (1.0 + self.drift)
        rows = np.flatnonzero(used & (hours > 0))
        size = len(rows)
        band = "peak" if not weekend and hour in PEAK_HOURS else "off_peak"
        return {
            "home": [self.household_ids[h] for h in self.home[rows].tolist()],
            "appliance": [KINDS[k] for k in self.kind[rows].tolist()],
            "rated_watts": self.watts[rows].tolist(),
            "on_hours": hours[rows].tolist(),
            "at": [at.isoformat()] * size,
            "outdoor_c": [temp] * size,
            "band": [band] * size,
            "metered": np.round(metered[rows], 6).tolist(),
        }
