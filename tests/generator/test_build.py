"""Which streams the generator generates: every declared one with a
simulation, or those GENERATOR_STREAMS names; a name it cannot generate
stops it with the variable named."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.generator.households import HouseholdDevicesSource
from services.generator.replay import ReplaySource
from services.generator.service import build_sources
from services.generator.settings import GeneratorSettings
from shared.settings import SettingsError
from shared.streams import builtin_streams, parse_declaration
from tests.generator.streams import SIMULATED
from tests.generator.test_binding import mix_declaration


def test_every_simulated_declaration_is_generated_by_default() -> None:
    grid = parse_declaration(mix_declaration("grid"))
    unsimulated = parse_declaration({**mix_declaration("ledger"), "simulation": None})
    sources = build_sources(GeneratorSettings(), [*builtin_streams(), grid, unsimulated])
    assert sorted(sources) == sorted([*SIMULATED, "grid"])
    assert all(source.spec.name == name for name, source in sources.items())


def test_generator_streams_restricts_and_settings_reach_the_simulator() -> None:
    settings = GeneratorSettings(generator_streams=("consumption",), generator_households=3, generator_sim_step=3600)
    sources = build_sources(settings, builtin_streams())
    assert list(sources) == ["consumption"]
    source = sources["consumption"]
    assert isinstance(source, HouseholdDevicesSource)
    assert len(source.household_ids) == 3 and source.clock.step_hours == 1.0


def test_a_stream_that_cannot_be_generated_names_the_variable() -> None:
    unsimulated = parse_declaration({**mix_declaration("ledger"), "simulation": None})
    settings = GeneratorSettings(generator_streams=("energy", "weather", "ledger"))
    with pytest.raises(SettingsError, match="GENERATOR_STREAMS=.*'weather', 'ledger'.*simulated streams: "):
        build_sources(settings, [*builtin_streams(), unsimulated])


def test_replay_goes_to_a_declared_stream(tmp_path: Path) -> None:
    csv = tmp_path / "rows.csv"
    csv.write_text("land\nNorway\n", encoding="utf-8")
    grid = parse_declaration(mix_declaration("grid"))
    sources = build_sources(GeneratorSettings(generator_replay_file=csv, generator_replay_stream="grid"), [grid])
    assert list(sources) == ["grid"] and isinstance(sources["grid"], ReplaySource)
    sources["grid"].close()  # type: ignore[attr-defined]
    with pytest.raises(SettingsError, match="GENERATOR_REPLAY_STREAM='weather': no such stream"):
        build_sources(GeneratorSettings(generator_replay_file=csv, generator_replay_stream="weather"), [grid])
