"""A declaration binds a simulator's roles to its own field names: the
simulator never names a field, an unbound role is left out, and a binding
that cannot work is refused with a reason."""

from __future__ import annotations

from typing import Any

import pytest

from services.generator.base import SimulationInvalid
from services.generator.energy import EnergyMixSource
from services.generator.settings import GeneratorSettings
from services.generator.simulators import SIMULATORS, simulate
from shared.streams import DeclarationInvalid, parse_declaration
from shared.validation import validate_batch
from tests.generator.streams import ENERGY

SETTINGS = GeneratorSettings(generator_seed=3)


def mix_declaration(name: str = "energy", **simulation: Any) -> dict[str, Any]:
    """An energy-mix stream in other words: its own field names, nuclear and year left out."""
    return {
        "name": name,
        "key": "land",
        "fields": [
            {"name": "land", "type": "str"},
            {"name": "green_pct", "type": "float", "minimum": 0, "maximum": 100},
            {"name": "fossil_pct", "type": "float", "minimum": 0, "maximum": 100},
            {"name": "grams_per_kwh", "type": "float", "minimum": 0, "maximum": 2000, "required": False},
        ],
        "simulation": simulation or {
            "source": "energy_mix",
            "bind": {"region": "land", "renewables": "green_pct", "fossil": "fossil_pct", "carbon": "grams_per_kwh"},
        },
    }


def test_roles_fill_the_bound_fields_and_unbound_roles_are_left_out() -> None:
    renamed = parse_declaration(mix_declaration())
    records = simulate(renamed, SETTINGS).next_batch(300)
    assert all(set(record) == {"land", "green_pct", "fossil_pct", "grams_per_kwh"} for record in records)
    assert validate_batch(renamed, records).reasons == {}
    # Same simulator, same seed, same stream name: the same values under the other names.
    builtin = simulate(ENERGY, SETTINGS).next_batch(300)
    assert [(r["land"], r["green_pct"], r["grams_per_kwh"]) for r in records] == [
        (r["country"], r["renewables_share_energy"], r["carbon_intensity_elec"]) for r in builtin
    ]


def test_a_simulator_refuses_roles_it_does_not_have() -> None:
    declaration = mix_declaration(source="energy_mix", bind={"region": "land", "sunshine": "green_pct", "fossil": "fossil_pct"})
    with pytest.raises(SimulationInvalid, match="no role 'sunshine'.*roles: region, period, renewables"):
        EnergyMixSource(parse_declaration(declaration), seed=1)


def test_an_unknown_simulator_is_refused_naming_the_known_ones() -> None:
    declaration = mix_declaration(source="weather", bind={"region": "land", "renewables": "green_pct", "fossil": "fossil_pct"})
    with pytest.raises(SimulationInvalid, match="no simulator 'weather'") as caught:
        simulate(parse_declaration(declaration), SETTINGS)
    assert all(name in str(caught.value) for name in SIMULATORS)


def test_a_stream_without_simulation_has_no_source() -> None:
    declaration = mix_declaration()
    del declaration["simulation"]
    with pytest.raises(SimulationInvalid, match="declares no simulation"):
        simulate(parse_declaration(declaration), SETTINGS)


BOUND = {"region": "land", "renewables": "green_pct", "fossil": "fossil_pct"}


@pytest.mark.parametrize(
    ("bind", "path", "reason"),
    [
        ({**BOUND, "carbon": "solar"}, "simulation.bind.carbon", "'solar' is not a field"),
        ({**BOUND, "carbon": "green_pct"}, "simulation.bind.carbon", "already filled by role 'renewables'"),
        ({"region": "land", "renewables": "green_pct"}, "simulation.bind", "required field 'fossil_pct'"),
    ],
)
def test_the_declaration_checks_each_binding(bind: dict[str, str], path: str, reason: str) -> None:
    with pytest.raises(DeclarationInvalid) as caught:
        parse_declaration(mix_declaration(source="energy_mix", bind=bind))
    assert [(p.path, reason in p.reason) for p in caught.value.problems] == [(path, True)]


def test_a_simulation_block_takes_no_unknown_keys() -> None:
    with pytest.raises(DeclarationInvalid) as caught:
        parse_declaration(mix_declaration(source="energy_mix", bind={"region": "land"}, seed=4))
    assert "simulation.seed" in [p.path for p in caught.value.problems]
