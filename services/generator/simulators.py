"""The generator's simulators, by the name a declaration's ``simulation.source`` gives.

Each takes the stream's declaration (whose ``simulation.bind`` names the
field each of its roles fills) and the generator's settings (seed, sizes,
simulated clock).
"""

from __future__ import annotations

from collections.abc import Callable

from services.generator.base import SimulationInvalid, Source
from services.generator.energy import EnergyMixSource
from services.generator.households import HouseholdDevicesSource
from services.generator.people import PeopleSource
from services.generator.pressure import WaterPressureSource
from services.generator.settings import GeneratorSettings
from shared.streams import StreamSpec

Simulator = Callable[[StreamSpec, GeneratorSettings], Source]

SIMULATORS: dict[str, Simulator] = {
    "energy_mix": lambda spec, s: EnergyMixSource(spec, s.generator_seed, countries=s.generator_countries),
    "water_pressure": lambda spec, s: WaterPressureSource(
        spec,
        s.generator_seed,
        sensors=s.generator_sensors,
        anomaly_rate=s.generator_anomaly_rate,
        sim_start=s.generator_sim_start,
        sim_step=s.generator_sim_step,
    ),
    "people": lambda spec, s: PeopleSource(spec, s.generator_seed),
    "household_devices": lambda spec, s: HouseholdDevicesSource(
        spec,
        s.generator_seed,
        households=s.generator_households,
        sim_start=s.generator_sim_start,
        sim_step=s.generator_sim_step,
    ),
}


def simulate(spec: StreamSpec, settings: GeneratorSettings) -> Source:
    """The source of ``spec``'s synthetic records; raises :class:`SimulationInvalid`."""
    if spec.simulation is None:
        raise SimulationInvalid(f"stream {spec.name!r} declares no simulation")
    simulator = SIMULATORS.get(spec.simulation.source)
    if simulator is None:
        raise SimulationInvalid(
            f"stream {spec.name!r}: no simulator {spec.simulation.source!r} (simulators: {', '.join(SIMULATORS)})"
        )
    return simulator(spec, settings)
