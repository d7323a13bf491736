from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from tests.streams import ENERGY, PEOPLE, PRESSURE, STREAMS
from shared.validation import RecordInvalid, validate_batch, validate_record

GOOD_ENERGY = {
    "country": "Portugal",
    "renewables_share_energy": 30.5,
    "fossil_share_energy": 69.5,
    "carbon_intensity_elec": 250.0,
}


def with_(record: dict, **changes: object) -> dict:
    out = dict(record)
    for name, value in changes.items():
        if value is ...:
            out.pop(name)
        else:
            out[name] = value
    return out


def test_good_record_is_cleaned() -> None:
    cleaned = validate_record(ENERGY, with_(GOOD_ENERGY, renewables_share_energy="30.5"))
    assert cleaned["renewables_share_energy"] == 30.5
    assert "nuclear_share_energy" not in cleaned  # optional and absent stays absent


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"fossil_share_energy": ...}, "fossil_share_energy", "missing"),
        ({"fossil_share_energy": "lots"}, "fossil_share_energy", "expected a number"),
        ({"fossil_share_energy": True}, "fossil_share_energy", "boolean"),
        ({"fossil_share_energy": [1]}, "fossil_share_energy", "expected a number"),
        ({"fossil_share_energy": 100.5}, "fossil_share_energy", "above maximum 100"),
        ({"fossil_share_energy": -1}, "fossil_share_energy", "below minimum 0"),
        ({"fossil_share_energy": math.nan}, "fossil_share_energy", "NaN"),
        ({"fossil_share_energy": "NaN"}, "fossil_share_energy", "NaN"),
        ({"carbon_intensity_elec": math.inf}, "carbon_intensity_elec", "infinite"),
        ({"carbon_intensity_elec": "-inf"}, "carbon_intensity_elec", "infinite"),
        ({"country": ""}, "country", "empty"),
        ({"country": 3.5}, "country", "expected a string"),
        ({"year": 2000.5}, "year", "integer"),
    ],
)
def test_each_bad_value_is_rejected_with_field_and_reason(changes: dict, field: str, reason: str) -> None:
    with pytest.raises(RecordInvalid) as failure:
        validate_record(ENERGY, with_(GOOD_ENERGY, **changes))
    assert failure.value.field == field
    assert reason in failure.value.reason


def test_batch_keeps_good_rows_and_reports_bad_ones() -> None:
    records = [GOOD_ENERGY, with_(GOOD_ENERGY, fossil_share_energy=None), "not an object", GOOD_ENERGY]
    result = validate_batch(ENERGY, records)
    assert result.valid.tolist() == [True, False, False, True]
    assert result.reasons[1] == "fossil_share_energy: missing"
    assert result.reasons[2].startswith("record: expected an object")
    assert result.row(3)["country"] == "Portugal"


def test_pressure_timestamps_and_labels() -> None:
    record = {
        "sensor_id": "S-1",
        "timestamp": "2026-01-02T03:04:05Z",
        "pressure_mca": "31.5",
        "latitude": -23.5,
        "longitude": -46.6,
        "neighbourhood": "Centro",
        "anomaly": "false",
    }
    cleaned = validate_record(PRESSURE, record)
    assert cleaned["timestamp"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert cleaned["anomaly"] is False
    with pytest.raises(RecordInvalid, match="timestamp"):
        validate_record(PRESSURE, with_(record, timestamp="yesterday"))
    with pytest.raises(RecordInvalid, match="anomaly"):
        validate_record(PRESSURE, with_(record, anomaly="maybe"))


def test_people_bounds() -> None:
    person = {"person_id": "p1", "age": 40, "years_education": 16, "hours_per_week": 40,
              "experience_years": 15, "income": 52000}
    assert validate_record(PEOPLE, person)["age"] == 40.0
    with pytest.raises(RecordInvalid, match="age"):
        validate_record(PEOPLE, with_(person, age=400))


def test_declarations_are_consistent() -> None:
    for stream in STREAMS.values():
        names = set(stream.field_names)
        assert stream.key in names
        for task in stream.tasks:
            assert set(task.features) <= set(stream.columns), (stream.name, task.name)
            assert set(task.optional_features) <= set(task.features)
            assert task.default in task.allowed_algorithms
            if task.target:
                assert task.target in names
