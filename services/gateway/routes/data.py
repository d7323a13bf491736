"""What the pipeline wrote: predictions, alerts and the latest state of entities (sensors)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from services.gateway import queries
from services.gateway.errors import dependency, invalid, json_response
from services.gateway.routes.common import filter_stream, task_named, text_filter
from services.gateway.schemas import ERROR_RESPONSES, UNAVAILABLE, AlertOut, PredictionOut
from services.gateway.state import GatewayState, get_state

router = APIRouter(tags=["data"])

_SINCE = Query(None, description="Only rows newer than this instant (ISO 8601).", examples=["2025-01-01T00:00:00Z"])
_LIMIT = Query(100, ge=1, le=1000)


@router.get("/predictions", summary="Latest predictions, newest first", response_model=list[PredictionOut],
            responses={**ERROR_RESPONSES, **UNAVAILABLE})
async def predictions(
    stream: str | None = text_filter(64, examples=["houses"]),
    task: str | None = text_filter(64, examples=["price"]),
    since: datetime | None = _SINCE,
    limit: int = _LIMIT,
    role: Literal["champion", "shadow"] = Query("champion", description="The served predictions, or a shadow's."),
    state: GatewayState = Depends(get_state),
) -> list[PredictionOut]:
    if stream is not None:
        spec = filter_stream(state, stream)
        if task is not None:
            task_named(spec, task)
    async with dependency("reading predictions", state.settings.dependency_timeout_seconds):
        rows = await queries.recent_predictions(state.pool, stream, task, since, limit, role)
    return [PredictionOut(**row) for row in rows]


@router.get("/alerts", summary="Latest alerts, newest first", response_model=list[AlertOut],
            responses={**ERROR_RESPONSES, **UNAVAILABLE})
async def alerts(
    stream: str | None = text_filter(64, examples=["pressure"]),
    since: datetime | None = _SINCE,
    limit: int = _LIMIT,
    state: GatewayState = Depends(get_state),
) -> list[AlertOut]:
    if stream is not None:
        filter_stream(state, stream)
    async with dependency("reading alerts", state.settings.dependency_timeout_seconds):
        rows = await queries.recent_alerts(state.pool, stream, since, limit)
    return [AlertOut(**row) for row in rows]


async def _entities(state: GatewayState, stream: str, area: str | None, alert_only: bool, limit: int) -> Response:
    spec = filter_stream(state, stream)
    if spec.entity is None:
        raise invalid("stream", f"stream {stream!r} declares no entity (things at a place, e.g. sensors)")
    async with dependency("reading entity state", state.settings.dependency_timeout_seconds):
        rows = await queries.entities(state.pool, stream, area, alert_only, limit)
    return json_response(rows)


@router.get("/v1/streams/{stream}/entities", summary="Latest state of every entity of a stream (e.g. sensors)",
            responses={**ERROR_RESPONSES, **UNAVAILABLE})
async def entities(
    stream: str,
    area: str | None = text_filter(128),
    alert_only: bool = Query(False, description="Only entities whose latest reading raised an alert."),
    limit: int = Query(1000, ge=1, le=10000),
    state: GatewayState = Depends(get_state),
) -> Response:
    """Per entity: its key, area, latitude, longitude, kind, its declared state values
    (the stream's ``entity.values``), the latest score and alert state, and alerts in
    the last 24 hours."""
    return await _entities(state, stream, area, alert_only, limit)


@router.get("/sensors", summary="Every pressure sensor: latest hourly mean, 30-day deviation, alert state",
            responses={**ERROR_RESPONSES, **UNAVAILABLE})
async def sensors(
    neighbourhood: str | None = text_filter(128),
    alert_only: bool = Query(False, description="Only sensors whose latest reading was abnormal."),
    limit: int = Query(1000, ge=1, le=10000),
    state: GatewayState = Depends(get_state),
) -> Response:
    """The entities of the stream named by SENSORS_STREAM (default pressure), as
    /v1/streams/{stream}/entities gives them; ``neighbourhood`` filters the area."""
    return await _entities(state, state.settings.sensors_stream, neighbourhood, alert_only, limit)
