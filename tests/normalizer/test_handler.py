"""The normalizer's handler on hand-made batches: what passes, what is
rejected and why, and what a features event holds."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from services.normalizer.encode import row_dicts
from services.normalizer.handler import Normalizer
from shared.events import FeaturesEvent
from shared.streams import parse_declaration
from shared.streams.catalog import Catalog
from tests.streams import ENERGY, PEOPLE, PRESSURE, STREAMS
from tests.normalizer.records import TOPICS, batch, energy, people, pressure, raw, record


@pytest.fixture
def normalizer() -> Normalizer:
    return Normalizer(TOPICS, Catalog(STREAMS.values()), max_keys=100)


def reasons(result) -> dict[int, str]:
    return {rejected.record.offset: rejected.reason for rejected in result.rejected}


def test_bad_fields_are_rejected_with_the_reason_and_good_rows_pass(normalizer: Normalizer) -> None:
    datas = [
        pressure(),  # 0 good
        pressure(pressure_mca=...),  # 1 missing
        pressure(pressure_mca="high"),  # 2 wrong type
        pressure(pressure_mca=250.0),  # 3 above maximum
        pressure(pressure_mca=-1),  # 4 below minimum
        pressure(pressure_mca="NaN"),  # 5 NaN
        pressure(pressure_mca="Infinity"),  # 6 infinity
        pressure(latitude=True),  # 7 boolean for a number
        pressure(timestamp="yesterday"),  # 8 bad timestamp
        pressure(neighbourhood=""),  # 9 empty string
        pressure(sensor_id="S-2", pressure_mca="48.5"),  # 10 good: numeric text is a number
        pressure(anomaly="maybe"),  # 11 bad label
    ]
    result = normalizer.handle(batch("pressure", datas))
    assert reasons(result) == {
        1: "pressure_mca: missing",
        2: "pressure_mca: expected a number, got 'high'",
        3: "pressure_mca: above maximum 200",
        4: "pressure_mca: below minimum 0",
        5: "pressure_mca: not a number (NaN)",
        6: "pressure_mca: infinite value",
        7: "latitude: expected a number, got a boolean",
        8: "timestamp: expected an ISO 8601 timestamp, got 'yesterday'",
        9: "neighbourhood: empty string",
        11: "anomaly: expected true or false, got 'maybe'",
    }
    assert [orjson.loads(o.value)["key"] for o in result.outputs] == ["S-1", "S-2"]
    assert orjson.loads(result.outputs[1].value)["features"]["pressure_mca"] == 48.5


def test_undecodable_and_malformed_envelopes_are_rejected(normalizer: Normalizer) -> None:
    topic = TOPICS.raw("people")
    records = [
        record(topic, b'{"event_id": "a", "stream": "peo', offset=0),
        record(topic, b"[1, 2]", offset=1),
        record(topic, None, offset=2),
        record(topic, raw("energy", energy()), offset=3),  # wrong stream for the topic
        record(topic, raw("people", people(), event_id=""), offset=4),
        record(topic, raw("people", people(), data=[1]), offset=5),
        record(topic, raw("people", people(), produced_at="soon"), offset=6),
        record(TOPICS.raw("nowhere"), raw("people", people()), offset=7),
        record(topic, raw("people", people()), offset=8),  # good
    ]
    result = normalizer.handle(records)
    found = reasons(result)
    assert found[0].startswith("invalid JSON: ")
    assert found[1] == "expected a JSON object, got array"
    assert found[2] == "empty message"
    assert found[3] == "stream: event is for 'energy' but arrived on the 'people' topic"
    assert found[4] == "event_id: expected a string of 1 to 64 characters"
    assert found[5] == "data: expected an object, got array"
    assert found[6] == "produced_at: not an ISO 8601 timestamp: 'soon'"
    assert "raw topic of no active stream" in found[7]
    assert set(found) == set(range(8))
    assert len(result.outputs) == 1


def test_hot_path_output_validates_as_features_event(normalizer: Normalizer) -> None:
    for stream, data in (("energy", energy()), ("pressure", pressure(anomaly=True)), ("people", people())):
        value = raw(stream, data, event_id=f"id-{stream}", source="upload", dataset_id="ds-1")
        [output] = normalizer.handle([record(TOPICS.raw(stream), value)]).outputs
        event = FeaturesEvent.model_validate_json(output.value)
        spec = STREAMS[stream]
        assert output.topic == TOPICS.features(stream)
        assert output.key == event.key.encode() == str(data[spec.key]).encode()
        assert event.event_id == f"id-{stream}"
        assert event.stream == stream
        assert set(spec.scaled_features) <= set(event.features)
        assert list(event.scaled) == list(spec.scaled_features)
        assert set(event.targets) == set(spec.targets)
        assert set(event.context) <= set(spec.context)
        assert event.source == "upload" and event.dataset_id == "ds-1"
        assert event.raw_produced_at is not None
        assert event.scaler_version == 1
        # One sample: the scaler centres it on itself.
        assert all(value == 0.0 for value in event.scaled.values())


def test_features_targets_and_context_carry_the_right_values(normalizer: Normalizer) -> None:
    poland = energy(country="Poland", year=..., carbon_intensity_elec=700.0)
    result = normalizer.handle(batch("energy", [energy(), poland]))
    first, second = (orjson.loads(o.value) for o in result.outputs)
    # Every numeric field the record carries is a feature; absent ones are left out.
    assert first["features"] == {
        "year": 2020.0,
        "renewables_share_energy": 70.0,
        "fossil_share_energy": 25.0,
        "nuclear_share_energy": 0.0,
        "carbon_intensity_elec": 30.0,
    }
    assert "year" not in second["features"]
    assert first["targets"] == {"carbon_intensity_elec": 30.0}
    assert first["context"] == {"country": "Norway", "year": 2020}
    assert isinstance(first["context"]["year"], int)
    assert second["context"] == {"country": "Poland"}  # absent optional field left out
    # Two samples of carbon 30 and 700: scaled to -1 and +1.
    assert first["scaled"]["carbon_intensity_elec"] == pytest.approx(-1.0)
    assert second["scaled"]["carbon_intensity_elec"] == pytest.approx(1.0)


def test_pressure_label_and_timestamp_context() -> None:
    normalizer = Normalizer(TOPICS, Catalog([PRESSURE]))
    datas = [
        pressure(anomaly=True, timestamp="2026-01-01T10:15:00Z"),
        pressure(anomaly=...),
        pressure(anomaly="false", sensor_type=...),
    ]
    events = [FeaturesEvent.model_validate_json(o.value) for o in normalizer.handle(batch("pressure", datas)).outputs]
    assert [e.targets for e in events] == [{"anomaly": 1.0}, {}, {"anomaly": 0.0}]
    assert events[0].context["timestamp"] == "2026-01-01T10:15:00+00:00"
    assert "sensor_type" not in events[2].context


def test_scaler_version_grows_per_batch_per_stream(normalizer: Normalizer) -> None:
    normalizer.handle(batch("people", [people(), people(age=50)]))
    result = normalizer.handle(batch("people", [people(age=70)]) + batch("energy", [energy()]))
    versions = {orjson.loads(o.value)["stream"]: orjson.loads(o.value)["scaler_version"] for o in result.outputs}
    assert versions == {"people": 2, "energy": 1}
    # A batch whose records are all rejected leaves the scaler as it was.
    normalizer.handle(batch("people", [people(age=5)]))
    assert normalizer.streams["people"].scaler.version == 2
    assert normalizer.streams["people"].scaler.n_samples == 3


def test_a_normalizer_serves_only_its_streams() -> None:
    normalizer = Normalizer(TOPICS, Catalog(STREAMS.values()), serves=lambda name: name == "people")
    result = normalizer.handle(batch("energy", [energy()]))
    assert not result.outputs and len(result.rejected) == 1
    assert normalizer.raw_topics() == [TOPICS.raw("people")]


def test_row_dicts_leave_out_what_is_not_finite() -> None:
    names = ("a", "b", "c")
    assert row_dicts(names, np.array([[1.0, 2.5, math.pi]])) == [{"a": 1.0, "b": 2.5, "c": math.pi}]
    assert row_dicts(names, np.array([[1.0, np.nan, 3.0], [np.inf, 2.0, 3.0]])) == [{"a": 1.0, "c": 3.0}, {"b": 2.0, "c": 3.0}]


CUSTOM = parse_declaration({
    "name": "custom",
    "key": "id",
    "fields": [
        {"name": "id", "type": "str"},
        {"name": "x", "type": "float"},
        {"name": "y", "type": "float", "required": False},
        {"name": "band", "type": "category", "categories": ["low", "high"]},
    ],
    "constants": {"scale": 2.0},
    "tables": {"weight": {"low": 1.0, "high": 10.0}},
    "derived": [{"name": "ratio", "expression": "x / y"}, {"name": "weighted", "expression": "x * scale * weight[band]"}],
    "tasks": [{"name": "t", "kind": "regression", "target": "y", "features": ["x", "band", "weighted"]}],
})


def test_an_absent_optional_field_is_left_out_not_sent_as_nan() -> None:
    normalizer = Normalizer(TOPICS, Catalog([CUSTOM]))
    result = normalizer.handle(batch("custom", [{"id": "a", "x": 1.0, "y": 2.0, "band": "low"},
                                                {"id": "b", "x": 1.0, "band": "high"}]))
    assert not result.rejected
    first, second = (orjson.loads(o.value) for o in result.outputs)
    assert first["features"] == {"x": 1.0, "y": 2.0, "ratio": 0.5, "weighted": 2.0}
    assert first["categories"] == {"band": "low"} and first["targets"] == {"y": 2.0}
    # No y: no ratio, no target; the event still flows (its label may come later).
    assert second["features"] == {"x": 1.0, "weighted": 20.0} and second["targets"] == {}


def test_a_computed_value_that_is_infinite_is_dead_lettered_with_the_column() -> None:
    normalizer = Normalizer(TOPICS, Catalog([CUSTOM]))
    result = normalizer.handle(batch("custom", [{"id": "a", "x": 1.0, "y": 0.0, "band": "low"},
                                                {"id": "b", "x": 1.0, "y": 4.0, "band": "dark"}]))
    assert reasons(result) == {
        0: "ratio: computed value is infinite (a division by zero?)",
        1: "band: 'dark' is not one of the categories ('low', 'high')",
    }
    assert not result.outputs
    assert normalizer.streams["custom"].scaler.n_samples == 0  # rejected rows never reach the scaler


@pytest.mark.parametrize(
    ("envelope", "reason"),
    [
        ({"event_id": "e\x00x"}, "event_id: contains a control character"),
        ({"source": "gen\x00"}, "source: contains a control character"),
        ({"dataset_id": "d\x00"}, "dataset_id: contains a control character"),
        ({"produced_at": "2026-01-01T00:00:00+00:00\x00"}, "produced_at: contains a control character"),
    ],
    ids=["event_id", "source", "dataset_id", "produced_at"],
)
def test_a_nul_in_an_envelope_string_is_refused_before_it_reaches_postgresql(
    normalizer: Normalizer, envelope: dict, reason: str
) -> None:
    """PostgreSQL's text refuses NUL: such an event used to pass validation
    and be dead-lettered only by the consumer after a failed write (making it
    re-apply its whole batch one record at a time)."""
    topic = TOPICS.raw("pressure")
    result = normalizer.handle([record(topic, raw("pressure", pressure(), **envelope), offset=0),
                                record(topic, raw("pressure", pressure(sensor_id="S-2")), offset=1)])
    assert reasons(result) == {0: reason}
    assert [orjson.loads(o.value)["key"] for o in result.outputs] == ["S-2"]
    assert b"\\u0000" not in b"".join(o.value for o in result.outputs)


def test_a_nul_in_a_declared_string_field_is_refused(normalizer: Normalizer) -> None:
    result = normalizer.handle(batch("pressure", [pressure(neighbourhood="Old\x00Town"), pressure(sensor_id="S\x00")]))
    assert reasons(result) == {0: "neighbourhood: contains a control character",
                               1: "sensor_id: contains a control character"}
    assert result.outputs == []
