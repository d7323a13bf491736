"""Raw records as the handler receives them, without a broker."""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka.structs import ConsumerRecord

from services.generator.messages import raw_event
from shared.topics import Topics

TOPICS = Topics("unit.")


def record(topic: str, value: bytes | None, offset: int = 0, key: bytes | None = b"k") -> ConsumerRecord:
    return ConsumerRecord(
        topic, 0, offset, 0, 0, key, value, None, len(key or b""), len(value or b""), []
    )


def raw(stream: str, fields: dict[str, Any], *, event_id: str | None = None, **envelope: Any) -> bytes:
    """A RawEvent's bytes; ``envelope`` overrides any envelope key (even ``data``)."""
    event = raw_event(stream, "k", fields, "2026-01-01T00:00:00+00:00", "generator")
    if event_id is not None:
        event["event_id"] = event_id
    event.update(envelope)
    return orjson.dumps(event)


def batch(stream: str, datas: list[dict[str, Any]]) -> list[ConsumerRecord]:
    topic = TOPICS.raw(stream)
    return [record(topic, raw(stream, data), offset=i) for i, data in enumerate(datas)]


def energy(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "country": "Norway",
        "year": 2020,
        "renewables_share_energy": 70.0,
        "fossil_share_energy": 25.0,
        "nuclear_share_energy": 0.0,
        "carbon_intensity_elec": 30.0,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


def pressure(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "sensor_id": "S-1",
        "timestamp": "2026-01-01T10:15:00+00:00",
        "pressure_mca": 50.0,
        "latitude": 40.4,
        "longitude": -3.7,
        "neighbourhood": "Centro",
        "sensor_type": "residential",
        "anomaly": False,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


def people(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "person_id": "p-1",
        "name": "Ada",
        "city": "London",
        "age": 36,
        "years_education": 18,
        "hours_per_week": 40.0,
        "experience_years": 12.0,
        "income": 65000.0,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}
