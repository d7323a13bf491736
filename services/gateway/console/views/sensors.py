"""The sensors page: a stream's entities on a plot coloured by alert state, its
alert feed, and one entity's history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.gateway import queries
from services.gateway.console.charts import line_chart
from services.gateway.console.live.runtime import ConsoleRuntime
from services.gateway.console.views import predictions
from services.gateway.console.views.guard import Outage, guarded
from services.gateway.console.views.mapview import MapLayout, layout
from services.gateway.state import GatewayState
from shared.streams import StreamSpec

MAP_WIDTH, MAP_HEIGHT = 720, 480
MAX_ENTITIES = 5000
ALERTS_SHOWN = 30
READINGS_SHOWN = 120


def entity_streams(state: GatewayState) -> list[StreamSpec]:
    """Active streams of things at a place: an entity with a latitude and a longitude."""
    return [
        spec for spec in state.catalog.active()
        if spec.entity is not None and spec.entity.latitude and spec.entity.longitude
    ]


def default_stream(state: GatewayState, streams: list[StreamSpec]) -> StreamSpec | None:
    for spec in streams:
        if spec.name == state.settings.sensors_stream:
            return spec
    return streams[0] if streams else None


async def sensor_map(state: GatewayState, spec: StreamSpec) -> MapLayout | Outage:
    entities = await guarded("sensors", state.settings.dependency_timeout_seconds,
                             queries.entities(state.pool, spec.name, None, False, MAX_ENTITIES))
    if isinstance(entities, Outage):
        return entities
    return layout(entities, MAP_WIDTH, MAP_HEIGHT, tiles_url=state.settings.console_map_tiles_url)


async def alert_feed(state: GatewayState, spec: StreamSpec) -> list[dict[str, Any]] | Outage:
    return await guarded("alerts", state.settings.dependency_timeout_seconds,
                         queries.recent_alerts(state.pool, spec.name, None, ALERTS_SHOWN))


@dataclass(frozen=True)
class EntityHistory:
    key: str
    entity: dict[str, Any] | None
    hourly: list[dict[str, Any]] | Outage
    hourly_chart: dict[str, object] | None
    readings_chart: dict[str, object] | None  # the latest readings the console saw
    readings: int


def _hourly_chart(hours: list[dict[str, Any]]) -> dict[str, object] | None:
    if len(hours) < 2:  # one hour is a row of the table, not a line
        return None
    x = [row["hour"].timestamp() for row in hours]
    return line_chart(x, {
        "mean score": [row["mean_score"] for row in hours],
        "highest score": [row["max_score"] for row in hours],
        "alerts": [float(row["alerts"]) for row in hours],
    })


def _readings_chart(spec: StreamSpec, runtime: ConsoleRuntime, key: str) -> tuple[dict[str, object] | None, int]:
    window = runtime.tail.window(spec.name)
    if window is None or spec.entity is None:
        return None, 0
    values = [name for name in spec.entity.values if spec.columns.get(name) == "number"]
    events = [e for e in reversed(window.latest(window.size)) if e.get("key") == key][-READINGS_SHOWN:]
    if not events or not values:
        return None, len(events)
    x = []
    for event in events:
        produced = event.get("raw_produced_at") or event.get("produced_at")
        try:
            x.append(datetime.fromisoformat(produced).timestamp())
        except (TypeError, ValueError):
            return None, len(events)
    series = {name: [(e.get("features") or {}).get(name) for e in events] for name in values}
    return line_chart(x, series), len(events)


async def entity_history(state: GatewayState, runtime: ConsoleRuntime, spec: StreamSpec, key: str) -> EntityHistory:
    timeout = state.settings.dependency_timeout_seconds
    entities = await guarded("sensors", timeout, queries.entities(state.pool, spec.name, None, False, MAX_ENTITIES))
    entity = None
    if not isinstance(entities, Outage):
        entity = next((e for e in entities if e["key"] == key), None)
    hourly = await guarded("history", timeout, predictions.entity_history(state.pool, spec.name, key))
    chart = None if isinstance(hourly, Outage) else _hourly_chart(hourly)
    readings, count = _readings_chart(spec, runtime, key)
    return EntityHistory(key, entity, hourly, chart, readings, count)
