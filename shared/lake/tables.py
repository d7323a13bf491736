"""What each kind of file holds: Arrow schemas and tables, split by date.

- features: one row per features message (its Kafka partition and offset
  included), the event's envelope as columns and its groups as structs
  named as in shared.events.FeaturesEvent (``features``, ``categories``,
  ``targets``, ``context``), their children being the stream's own columns
  (from its declaration, so every file of one declaration version has one
  schema; a later version's extra columns are extra struct children);
- predictions and alerts: the PostgreSQL rows as they are;
- history: one row per entity and hour, the mean and alert state derived.

Each row is filed under the UTC date of one of its times: a features
event's ``produced_at``, a prediction's ``scored_at``, an alert's
``created_at``, a history row's ``hour``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shared.lake.layout import ALERTS, FEATURES, HISTORY, PREDICTIONS
from shared.streams import FieldType, StreamSpec

TIMESTAMP = pa.timestamp("us", tz="UTC")
EPOCH = date(1970, 1, 1)

PREDICTIONS_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()), ("task", pa.string()), ("key", pa.string()), ("status", pa.string()),
        ("model_id", pa.int64()), ("model_version", pa.int32()), ("prediction", pa.float64()),
        ("label", pa.string()), ("score", pa.float64()), ("actual", pa.float64()), ("actual_label", pa.string()),
        ("error", pa.float64()), ("percent_error", pa.float64()), ("produced_at", TIMESTAMP),
        ("scored_at", TIMESTAMP),
    ]
)
ALERTS_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()), ("task", pa.string()), ("key", pa.string()), ("area", pa.string()),
        ("latitude", pa.float64()), ("longitude", pa.float64()), ("value", pa.float64()), ("score", pa.float64()),
        ("model_version", pa.int32()), ("reading_at", TIMESTAMP), ("created_at", TIMESTAMP),
    ]
)
HISTORY_SCHEMA = pa.schema(
    [
        ("key", pa.string()), ("hour", TIMESTAMP), ("mean", pa.float64()), ("deviation", pa.float64()),
        ("alert", pa.bool_()), ("anomalies", pa.int32()), ("readings", pa.int32()), ("kind", pa.string()),
        ("area", pa.string()), ("latitude", pa.float64()), ("longitude", pa.float64()),
    ]
)
# The column whose UTC date files a row, per kind.
DATE_COLUMN = {FEATURES: "produced_at", PREDICTIONS: "scored_at", ALERTS: "created_at", HISTORY: "hour"}

_ENVELOPE = [
    ("event_id", pa.string()), ("key", pa.string()), ("produced_at", TIMESTAMP), ("raw_produced_at", TIMESTAMP),
    ("source", pa.string()), ("dataset_id", pa.string()), ("scaler_version", pa.int64()),
    ("topic_partition", pa.int32()), ("topic_offset", pa.int64()),
]
_FIELD_TYPES = {
    FieldType.FLOAT: pa.float64(), FieldType.INT: pa.int64(), FieldType.BOOL: pa.bool_(),
    FieldType.STR: pa.string(), FieldType.CATEGORY: pa.string(), FieldType.DATETIME: TIMESTAMP,
}


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return None if value is None or isinstance(value, dict | list) else str(value)


def _coerce(arrow_type: pa.DataType) -> Any:
    if arrow_type == TIMESTAMP:
        return _time
    if pa.types.is_floating(arrow_type):
        return _float
    if pa.types.is_integer(arrow_type):
        return _int
    if pa.types.is_boolean(arrow_type):
        return _bool
    return _text


def _struct(fields: Sequence[tuple[str, pa.DataType]]) -> pa.StructType | None:
    # Parquet cannot store a group without children: no struct then.
    return pa.struct(list(fields)) if fields else None


def features_groups(spec: StreamSpec) -> dict[str, pa.StructType]:
    """The struct column of each group the stream's features events carry."""
    groups = {
        "features": _struct([(name, pa.float64()) for name, kind in spec.columns.items() if kind == "number"]),
        "categories": _struct([(f.name, pa.string()) for f in spec.fields if f.type is FieldType.CATEGORY]),
        "targets": _struct([(name, pa.float64() if spec.columns.get(name) == "number" else pa.string())
                            for name in spec.targets]),
        "context": _struct([(name, _FIELD_TYPES[spec.field(name).type]) for name in spec.context]),
    }
    return {name: struct for name, struct in groups.items() if struct is not None}


def features_schema(spec: StreamSpec) -> pa.Schema:
    return pa.schema(_ENVELOPE + list(features_groups(spec).items()))


def features_table(spec: StreamSpec, records: Iterable[tuple[int, int, bytes | None]]) -> pa.Table:
    """Features messages (partition, offset, value) as a table; a value that
    is not a JSON object becomes a row with its offset and nothing else, so
    the file still accounts for every offset it covers."""
    groups = features_groups(spec)
    envelope: dict[str, list[Any]] = {name: [] for name, _ in _ENVELOPE}
    nested: dict[str, list[dict[str, Any]]] = {name: [] for name in groups}
    coerce = {group: {child.name: _coerce(child.type) for child in struct} for group, struct in groups.items()}
    for partition, offset, value in records:
        try:
            event = orjson.loads(value or b"null")
        except orjson.JSONDecodeError:
            event = None
        event = event if isinstance(event, dict) else {}
        envelope["event_id"].append(_text(event.get("event_id")))
        envelope["key"].append(_text(event.get("key")))
        envelope["produced_at"].append(_time(event.get("produced_at")))
        envelope["raw_produced_at"].append(_time(event.get("raw_produced_at")))
        envelope["source"].append(_text(event.get("source")))
        envelope["dataset_id"].append(_text(event.get("dataset_id")))
        envelope["scaler_version"].append(_int(event.get("scaler_version")))
        envelope["topic_partition"].append(partition)
        envelope["topic_offset"].append(offset)
        for group, converters in coerce.items():
            values = event.get(group)
            values = values if isinstance(values, dict) else {}
            nested[group].append({name: convert(values.get(name)) for name, convert in converters.items()})
    arrays = [pa.array(envelope[name], type=kind) for name, kind in _ENVELOPE]
    arrays += [pa.array(nested[group], type=struct) for group, struct in groups.items()]
    return pa.Table.from_arrays(arrays, schema=features_schema(spec))


def rows_table(schema: pa.Schema, rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Database rows (mappings with the schema's columns) as a table."""
    rows = list(rows)
    coerce = {field.name: _coerce(field.type) for field in schema}
    columns = {name: [convert(row.get(name)) for row in rows] for name, convert in coerce.items()}
    return pa.Table.from_pydict(columns, schema=schema)


def history_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """entity_history rows as history items: the mean and the alert state derived."""
    out = []
    for row in rows:
        item = dict(row)
        count = item.get("value_count") or 0
        item["mean"] = item["value_sum"] / count if count else None
        item["alert"] = bool(item.get("anomalies"))
        out.append(item)
    return out


def split_by_date(table: pa.Table, column: str) -> dict[date, pa.Table]:
    """The table's rows per UTC date of ``column`` (rows without one on 1970-01-01)."""
    if table.num_rows == 0:
        return {}
    days = pc.fill_null(pc.cast(table[column], pa.date32()), pa.scalar(EPOCH, pa.date32()))
    out = {}
    for day in pc.unique(days).to_pylist():
        out[day] = table.filter(pc.equal(days, pa.scalar(day, pa.date32())))
    return dict(sorted(out.items()))


def parquet_bytes(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()
