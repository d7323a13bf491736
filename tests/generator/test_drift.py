"""Drift shifts a stream's distribution while on, and only then."""

from __future__ import annotations

import numpy as np

from services.generator.drift import DriftControl
from tests.generator.streams import consumption, energy, people, pressure


def mean(records: list[dict], field: str) -> float:
    return float(np.mean([r[field] for r in records]))


def test_toggling_shifts_the_chosen_streams_only() -> None:
    sources = {
        "energy": energy(1),
        "pressure": pressure(1, anomaly_rate=0.0),
        "people": people(1),
        "consumption": consumption(1, sim_step=3600),
    }
    fields = {"energy": "carbon_intensity_elec", "pressure": "pressure_mca", "people": "income"}
    control = DriftControl(sources, ["people", "pressure", "consumption"], magnitude=0.5)

    def means() -> dict[str, float]:
        out = {name: mean(sources[name].next_batch(2000), field) for name, field in fields.items()}
        # Consumption: metered over nominal energy, so the hours and the
        # appliances in use at the moment do not move it.
        records = sources["consumption"].next_batch(2000)
        out["consumption"] = float(np.mean([r["consumed_kwh"] / (r["power_w"] * r["usage_hours"] / 1000) for r in records]))
        return out

    before = means()
    assert control.toggle() is True
    during = means()
    assert during["people"] > before["people"] * 1.35
    assert during["pressure"] > before["pressure"] * 1.2  # the level shifts, the daily swing does not
    assert during["consumption"] > before["consumption"] * 1.3
    assert abs(during["energy"] / before["energy"] - 1) < 0.1
    assert control.toggle() is False
    after = means()
    assert abs(after["people"] / before["people"] - 1) < 0.1
    assert abs(after["consumption"] / before["consumption"] - 1) < 0.1


def test_drift_applies_from_the_next_record() -> None:
    source = people(2)
    source.next_batch(1)  # a block is drawn and buffered
    source.drift = 4.0
    assert source.next_batch(1)[0]["income"] > 5 * 20_000
