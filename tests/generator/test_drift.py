"""Drift shifts a stream's distribution while on, and only then."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from services.generator.drift import DriftControl
from services.generator.energy import EnergySource
from services.generator.people import PeopleSource
from services.generator.pressure import PressureSource


def mean(records: list[dict], field: str) -> float:
    return float(np.mean([r[field] for r in records]))


def test_toggling_shifts_the_chosen_streams_only() -> None:
    sources = {
        "energy": EnergySource(1),
        "pressure": PressureSource(1, anomaly_rate=0.0, sim_start=datetime(2026, 1, 1, tzinfo=UTC)),
        "people": PeopleSource(1),
    }
    fields = {"energy": "carbon_intensity_elec", "pressure": "pressure_mca", "people": "income"}
    control = DriftControl(sources, ["people", "pressure"], magnitude=0.5)
    before = {name: mean(s.next_batch(2000), fields[name]) for name, s in sources.items()}
    assert control.toggle() is True
    during = {name: mean(s.next_batch(2000), fields[name]) for name, s in sources.items()}
    assert during["people"] > before["people"] * 1.35
    assert during["pressure"] > before["pressure"] * 1.2  # the level shifts, the daily swing does not
    assert abs(during["energy"] / before["energy"] - 1) < 0.1
    assert control.toggle() is False
    after = {name: mean(s.next_batch(2000), fields[name]) for name, s in sources.items()}
    assert abs(after["people"] / before["people"] - 1) < 0.1


def test_drift_applies_from_the_next_record() -> None:
    source = PeopleSource(2)
    source.next_batch(1)  # a block is drawn and buffered
    source.drift = 4.0
    assert source.next_batch(1)[0]["income"] > 5 * 20_000
