"""CSV replay: the stream's columns, numbers parsed, bad cells kept as text."""

from __future__ import annotations

from pathlib import Path

from services.generator.messages import Emitter
from services.generator.replay import ReplaySource, parse_row
from services.normalizer.handler import Normalizer
from shared.streams.catalog import Catalog
from tests.generator.streams import ENERGY, PRESSURE
from tests.generator.test_messages import TOPICS, as_records

OWID = """country,year,iso_code,renewables_share_energy,fossil_share_energy,nuclear_share_energy,carbon_intensity_elec,population
Norway,2020,NOR,71.5,27.0,0,29.5,5379475
Poland,2021,POL,10.2,88.1,,750.0,37950802
Chad,2019,TCD,,,,,16126866
Spain,2022,ESP,NaN,60.0,9.5,160.0,47000000
Peru,1999.0,PER,30,65,0,250,2000
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "energy.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_rows_keep_declared_fields_and_parse_numbers() -> None:
    row = {"country": " Norway ", "year": "2020", "renewables_share_energy": "71.5", "iso_code": "NOR", "nuclear_share_energy": ""}
    assert parse_row(row, ENERGY) == {"country": "Norway", "year": 2020, "renewables_share_energy": 71.5}
    assert parse_row({"year": "1999.0", "fossil_share_energy": "NaN"}, ENERGY) == {"year": 1999, "fossil_share_energy": "NaN"}
    assert parse_row({"year": "20x0"}, ENERGY) == {"year": "20x0"}
    assert parse_row({"anomaly": "true", "timestamp": "2026-01-01T00:00:00Z"}, PRESSURE) == {
        "anomaly": "true",
        "timestamp": "2026-01-01T00:00:00Z",
    }


def test_replay_reads_every_row_once_in_any_batch_size(tmp_path: Path) -> None:
    source = ReplaySource(write(tmp_path, OWID), ENERGY)
    batches = [source.next_batch(2), source.next_batch(2), source.next_batch(2), source.next_batch(2)]
    assert [len(b) for b in batches] == [2, 2, 1, 0]
    assert [r.get("country") for b in batches for r in b] == ["Norway", "Poland", "Chad", "Spain", "Peru"]
    assert source.rows_read == 5


def test_replayed_rows_go_through_the_normalizer(tmp_path: Path) -> None:
    emitter = Emitter(ReplaySource(write(tmp_path, OWID), ENERGY), seed=0, origin="replay")
    messages = emitter.batch(100)
    assert [key for key, _ in messages] == [b"Norway", b"Poland", b"Chad", b"Spain", b"Peru"]
    result = Normalizer(TOPICS, Catalog([ENERGY])).handle(as_records("energy", messages))
    assert sorted(r.reason for r in result.rejected) == [
        "renewables_share_energy: missing",
        "renewables_share_energy: not a number (NaN)",
    ]
    assert len(result.outputs) == 3


def test_a_row_without_its_key_still_gets_a_message_key(tmp_path: Path) -> None:
    emitter = Emitter(ReplaySource(write(tmp_path, "year,fossil_share_energy\n2020,50\n"), ENERGY), seed=0)
    [(key, _)] = emitter.batch(10)
    assert key == b"energy-0"
