"""The lake's pure parts: destinations, file names, tables per kind, dates,
page tokens and the original API's shape."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from services.consumer.history import hour_totals
from services.gateway.history import LegacyShape, decode_page_token, encode_page_token, history_item
from shared.lake.addresses import DestinationError, LakeSourceError, check_address, is_export_id, parse_destination
from shared.lake.layout import file_path, temporary_path
from shared.lake.tables import (
    HISTORY_SCHEMA,
    features_schema,
    features_table,
    history_rows,
    parquet_bytes,
    rows_table,
    split_by_date,
)
from tests.ml.synthetic import features_events
from tests.streams import ENERGY, PRESSURE


def test_destinations_are_a_bucket_with_a_prefix_or_a_directory(tmp_path: Path) -> None:
    assert parse_destination("s3://fluxo-lake/exports/") == ("s3://fluxo-lake/exports", "fluxo-lake",
                                                             "fluxo-lake/exports")
    assert parse_destination("s3://fluxo-lake") == ("s3://fluxo-lake", "fluxo-lake", "fluxo-lake")
    assert parse_destination(f"file://{tmp_path}/lake")[0] == str(tmp_path / "lake")
    assert parse_destination(str(tmp_path / "a" / ".." / "lake"))[1] is None
    for bad in ("", "s3://UPPER/x", "s3://ab", "s3://bucket/a//b", "s3://bucket/../x", "gs://bucket/x"):
        with pytest.raises(DestinationError):
            parse_destination(bad)


def test_training_sources() -> None:
    assert is_export_id("5b0c6f6c1f9e4c49a0a4f1d1e2c3b4a5") and not is_export_id("5B0C")
    assert check_address("s3://fluxo-lake/x") == "s3://fluxo-lake/x"
    assert check_address("/srv/lake") == "/srv/lake"
    for bad in ("lake/relative", "http://x/y", "s3://x"):
        with pytest.raises(LakeSourceError):
            check_address(bad)


def test_file_names_come_from_the_segment() -> None:
    assert file_path("features", "pressure", date(2026, 11, 22), 2, 400, 900) == (
        "features/stream=pressure/date=2026-11-22/features-2-400-900.parquet")
    assert temporary_path(17, date(2026, 11, 22)) == "_tmp/segment-17/2026-11-22.parquet"


def test_features_become_one_row_per_message_with_the_stream_s_columns() -> None:
    events = [e.model_dump(mode="json") for e in features_events(PRESSURE, 3)]
    events[1]["features"]["unknown_column"] = 5.0
    events[2]["features"][PRESSURE.entity.history.value] = "not a number"
    records = [(0, 10 + i, orjson.dumps(e)) for i, e in enumerate(events)] + [(1, 3, b"{broken")]
    table = features_table(PRESSURE, records)
    assert table.schema == features_schema(PRESSURE)
    assert table.num_rows == 4
    assert table["topic_offset"].to_pylist() == [10, 11, 12, 3]
    assert table["event_id"].to_pylist()[:3] == [e["event_id"] for e in events] and table["event_id"][3].as_py() is None
    features = table["features"].to_pylist()
    value = PRESSURE.entity.history.value
    assert features[0][value] == events[0]["features"][value]
    assert "unknown_column" not in features[1] and features[2][value] is None
    assert table["context"].to_pylist()[0][PRESSURE.key] == events[0]["context"][PRESSURE.key]
    # A stream without category fields has no categories struct (Parquet cannot hold an empty group).
    assert "categories" not in features_schema(ENERGY).names
    pa.BufferReader(parquet_bytes(table))  # writes as Parquet


def test_rows_are_filed_by_the_utc_date() -> None:
    rows = history_rows([
        {"key": "a", "hour": datetime(2026, 11, 21, 23, tzinfo=UTC), "value_sum": 6.0, "value_count": 2,
         "anomalies": 1},
        {"key": "a", "hour": datetime(2026, 11, 22, 0, tzinfo=UTC), "value_sum": 5.0, "value_count": 0,
         "anomalies": 0},
    ])
    table = rows_table(HISTORY_SCHEMA, rows)
    assert table["mean"].to_pylist() == [3.0, None] and table["alert"].to_pylist() == [True, False]
    days = split_by_date(table, "hour")
    assert list(days) == [date(2026, 11, 21), date(2026, 11, 22)]
    assert [part.num_rows for part in days.values()] == [1, 1]


def test_hour_totals_sum_per_entity_and_hour_with_the_latest_reading_s_values() -> None:
    hour = datetime(2026, 11, 22, 10, tzinfo=UTC)
    rows = [
        ("p", "s1", hour, "e2", hour.replace(minute=40), 30.0, 2.0, True, "k2", "north", 1.0, 2.0),
        ("p", "s1", hour, "e1", hour.replace(minute=10), 10.0, 1.0, False, "k1", "south", 3.0, 4.0),
        ("p", "s1", hour, "e3", hour.replace(minute=20), None, None, True, "k3", "east", 5.0, 6.0),
    ]
    assert hour_totals(rows) == [("p", "s1", hour, 3, 2, 40.0, 2, hour.replace(minute=40), 2.0, "k2", "north",
                                  1.0, 2.0)]


def test_page_tokens_round_trip_and_refuse_garbage() -> None:
    hour = datetime(2026, 11, 22, 10, tzinfo=UTC)
    assert decode_page_token(encode_page_token(hour, "s-1")) == (hour, "s-1")
    for bad in ("", "abc", encode_page_token(hour, "x")[:-3], "W10", "WyJ4IiwgMV0"):
        with pytest.raises(ValueError):
            decode_page_token(bad)


def test_the_original_shape_is_data() -> None:
    shape = LegacyShape.load()
    item = history_item({"key": "DP_060785", "hour": datetime(2025, 3, 25, 16, tzinfo=UTC), "mean": 10.91,
                         "deviation": 0.75, "anomalies": 2, "readings": 12, "kind": "A", "area": "ROGER",
                         "latitude": -7.55, "longitude": -35.93})
    assert shape.render(item) == {"xid": "DP_060785", "hora": "16", "data": "2025-03-25", "media_hora": 10.91,
                                  "desvio_padrao_30_dias": 0.75, "alerta": "Anormal", "tipo": "A",
                                  "latitude": -7.55, "longitude": -35.93, "bairro": "ROGER"}


def test_a_mapping_naming_no_history_value_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "legacy.yaml"
    path.write_text("fields: {xid: key, nope: sensor_colour}\nalert_labels: {normal: N, abnormal: A}\n")
    with pytest.raises(ValueError, match="sensor_colour"):
        LegacyShape.load(path)
