"""The entity history as the gateway answers it: items, pages, CSV, and the
original water-pressure API's shape.

An item is one entity and hour: its key, the hour (UTC), the mean of the
declared value, the declared deviation at the hour's latest reading, the
alert state (any alert in the hour), the number of alerts and readings, and
the entity's kind, area and place. The original API's keys are data
(legacy_sensors.yaml), mapped onto these names.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

LEGACY_MAPPING_FILE = Path(__file__).with_name("legacy_sensors.yaml")

HISTORY_COLUMNS = (
    "key", "hour", "mean", "deviation", "alert", "anomalies", "readings", "kind", "area", "latitude", "longitude",
)
# What a legacy key may show: the item's columns and two renderings of its hour and alert state.
DERIVED = ("hour_of_day", "date", "alert_label")


def history_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """A history row (key, hour, mean, deviation, anomalies, readings, kind,
    area, latitude, longitude) as an item, its alert state derived."""
    item = {name: row.get(name) for name in HISTORY_COLUMNS}
    item["alert"] = bool(row.get("anomalies"))
    return item


def encode_page_token(hour: datetime, key: str) -> str:
    """The position after which the next page starts (pages are ordered by hour, then key)."""
    return base64.urlsafe_b64encode(orjson.dumps([hour.isoformat(), key])).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[datetime, str]:
    """Raises ValueError when the token is not one :func:`encode_page_token` made."""
    try:
        hour, key = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        moment = datetime.fromisoformat(hour)
    except (ValueError, TypeError, orjson.JSONDecodeError) as error:
        raise ValueError("not a page token from a previous answer's next") from error
    if not isinstance(key, str) or moment.tzinfo is None:
        raise ValueError("not a page token from a previous answer's next")
    return moment, key


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def history_csv(items: Iterable[Mapping[str, Any]], columns: tuple[str, ...] = HISTORY_COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for item in items:
        writer.writerow([_cell(item.get(name)) for name in columns])
    return out.getvalue()


@dataclass(frozen=True)
class LegacyShape:
    """The original API's keys (in order) and the item value each shows."""

    fields: dict[str, str]
    normal: str
    abnormal: str

    @classmethod
    def load(cls, path: Path = LEGACY_MAPPING_FILE) -> LegacyShape:
        data = yaml.safe_load(path.read_text())
        fields = {str(key): str(source) for key, source in data["fields"].items()}
        known = set(HISTORY_COLUMNS) | set(DERIVED)
        unknown = sorted(source for source in fields.values() if source not in known)
        if unknown:
            raise ValueError(f"{path.name}: no history value named {', '.join(unknown)} (known: {sorted(known)})")
        labels = data["alert_labels"]
        return cls(fields, str(labels["normal"]), str(labels["abnormal"]))

    def render(self, item: Mapping[str, Any]) -> dict[str, Any]:
        hour: datetime = item["hour"].astimezone(UTC)
        values = {
            **item,
            "hour_of_day": f"{hour:%H}",
            "date": f"{hour:%Y-%m-%d}",
            "alert_label": self.abnormal if item["alert"] else self.normal,
        }
        return {key: values[source] for key, source in self.fields.items()}
