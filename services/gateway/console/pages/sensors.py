"""The sensors page (/map): an entity stream's things at their place, the alert
feed beside them, and one thing's history on click.

Not at /sensors: GET /sensors is the JSON API's list of the same sensors.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from services.gateway.console.live.runtime import console_runtime
from services.gateway.console.pages.common import gateway, not_found
from services.gateway.console.templating import page, partial
from services.gateway.console.views.sensors import (
    alert_feed,
    default_stream,
    entity_history,
    entity_streams,
    sensor_map,
)
from shared.streams import StreamSpec

router = APIRouter(include_in_schema=False)


def _entity_stream(request: Request, name: str) -> StreamSpec | None:
    return next((spec for spec in entity_streams(gateway(request)) if spec.name == name), None)


@router.get("/map", response_class=HTMLResponse, name="console-sensors")
async def sensors_page(request: Request, stream: str | None = Query(None, max_length=64)) -> HTMLResponse:
    state = gateway(request)
    console_runtime(request)  # the readings chart needs the events the runtime follows
    streams = entity_streams(state)
    spec = _entity_stream(request, stream) if stream else default_stream(state, streams)
    if stream and spec is None:
        return not_found(request, f"stream of sensors {stream!r}")
    context = {"streams": streams, "spec": spec, "layout": None, "alerts": []}
    if spec is not None:
        context.update(layout=await sensor_map(state, spec), alerts=await alert_feed(state, spec))
    return page(request, "sensors.html", active="sensors", title="Sensors", **context)


@router.get("/map/{stream}/plot", response_class=HTMLResponse, name="console-sensors-plot")
async def sensors_plot(request: Request, stream: str) -> HTMLResponse:
    spec = _entity_stream(request, stream)
    if spec is None:
        return not_found(request, f"stream of sensors {stream!r}")
    return partial(request, "partials/sensor_map.html", spec=spec, layout=await sensor_map(gateway(request), spec))


@router.get("/map/{stream}/alerts", response_class=HTMLResponse, name="console-sensors-alerts")
async def sensors_alerts(request: Request, stream: str) -> HTMLResponse:
    spec = _entity_stream(request, stream)
    if spec is None:
        return not_found(request, f"stream of sensors {stream!r}")
    return partial(request, "partials/alert_feed.html", spec=spec, alerts=await alert_feed(gateway(request), spec))


@router.get("/map/{stream}/sensor", response_class=HTMLResponse, name="console-sensor-history")
async def sensor_history(request: Request, stream: str, key: str = Query(max_length=256)) -> HTMLResponse:
    spec = _entity_stream(request, stream)
    if spec is None:
        return not_found(request, f"stream of sensors {stream!r}")
    history = await entity_history(gateway(request), console_runtime(request), spec, key)
    return partial(request, "partials/sensor_history.html", spec=spec, history=history)
