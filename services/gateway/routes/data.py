"""What the pipeline wrote: predictions, alerts and the pressure sensors' state."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query

from services.gateway import queries
from services.gateway.routes.common import stream_named, task_named, text_filter
from services.gateway.schemas import ERROR_RESPONSES, AlertOut, PredictionOut, SensorOut
from services.gateway.state import GatewayState, get_state

router = APIRouter(tags=["data"])

_SINCE = Query(None, description="Only rows newer than this instant (ISO 8601).", examples=["2025-01-01T00:00:00Z"])
_LIMIT = Query(100, ge=1, le=1000)


@router.get("/predictions", summary="Latest predictions, newest first", response_model=list[PredictionOut],
            responses=ERROR_RESPONSES)
async def predictions(
    stream: str | None = text_filter(64, examples=["energy"]),
    task: str | None = text_filter(64, examples=["carbon"]),
    since: datetime | None = _SINCE,
    limit: int = _LIMIT,
    state: GatewayState = Depends(get_state),
) -> list[PredictionOut]:
    if stream is not None:
        spec = stream_named(stream)
        if task is not None:
            task_named(spec, task)
    rows = await queries.recent_predictions(state.pool, stream, task, since, limit)
    return [PredictionOut(**row) for row in rows]


@router.get("/alerts", summary="Latest alerts, newest first", response_model=list[AlertOut],
            responses=ERROR_RESPONSES)
async def alerts(
    stream: str | None = text_filter(64, examples=["pressure"]),
    since: datetime | None = _SINCE,
    limit: int = _LIMIT,
    state: GatewayState = Depends(get_state),
) -> list[AlertOut]:
    if stream is not None:
        stream_named(stream)
    rows = await queries.recent_alerts(state.pool, stream, since, limit)
    return [AlertOut(**row) for row in rows]


@router.get("/sensors", summary="Every pressure sensor: latest hourly mean, 30-day deviation, alert state",
            response_model=list[SensorOut])
async def sensors(
    neighbourhood: str | None = text_filter(128),
    alert_only: bool = Query(False, description="Only sensors whose latest reading was abnormal."),
    limit: int = Query(1000, ge=1, le=10000),
    state: GatewayState = Depends(get_state),
) -> list[SensorOut]:
    """What the original water-pressure API served as /dados_dia and /dados_geral."""
    rows = await queries.sensors(state.pool, neighbourhood, alert_only, limit)
    return [SensorOut(**row) for row in rows]
