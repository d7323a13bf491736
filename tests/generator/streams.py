"""The built-in declarations and their simulators, as the generator tests build them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.generator.base import BlockSource
from services.generator.energy import EnergyMixSource
from services.generator.households import HouseholdDevicesSource
from services.generator.people import PeopleSource
from services.generator.pressure import WaterPressureSource
from tests.streams import CONSUMPTION, ENERGY, PEOPLE, PRESSURE

START = datetime(2026, 3, 1, tzinfo=UTC)
SIMULATED = ("energy", "pressure", "people", "consumption")


def energy(seed: int, **params: Any) -> EnergyMixSource:
    return EnergyMixSource(ENERGY, seed, **params)


def pressure(seed: int, **params: Any) -> WaterPressureSource:
    return WaterPressureSource(PRESSURE, seed, **{"sim_start": START, **params})


def people(seed: int) -> PeopleSource:
    return PeopleSource(PEOPLE, seed)


def consumption(seed: int, **params: Any) -> HouseholdDevicesSource:
    return HouseholdDevicesSource(CONSUMPTION, seed, **{"sim_start": START, **params})


MAKERS = {"energy": energy, "pressure": pressure, "people": people, "consumption": consumption}


def source(stream: str, seed: int) -> BlockSource:
    """The built-in stream's simulator with the generator's default sizes."""
    return MAKERS[stream](seed)
