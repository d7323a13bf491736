"""The hourly history of entity streams, and the original water-pressure
API's two routes over it.

``GET /v1/streams/{stream}/history`` and ``GET /v1/sensors/history`` (the
stream named by SENSORS_STREAM) page through the history in (hour, key)
order, as JSON or CSV. ``GET /dados_geral`` (the last twelve months, streamed
as one JSON array) and ``GET /dados_dia`` (today's latest hour) answer with
the original API's keys (services/gateway/legacy_sensors.yaml).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal

import orjson
import structlog
from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response, StreamingResponse

from services.gateway import history_queries
from services.gateway.errors import ApiError, invalid, json_response, unavailable
from services.gateway.history import (
    LegacyShape,
    decode_page_token,
    encode_page_token,
    history_csv,
    history_item,
)
from services.gateway.routes.common import filter_stream, text_filter
from services.gateway.schemas import ERROR_RESPONSES, UNAVAILABLE
from services.gateway.state import GatewayState, get_state
from shared.months import day_of, months_before
from shared.streams import StreamSpec

log = structlog.get_logger(__name__)
router = APIRouter(tags=["history"])

# Rows per query while /dados_geral streams; the most rows /dados_dia sends.
STREAM_CHUNK = 5000
MAX_HOUR_ROWS = 100_000
NEXT_PAGE_HEADER = "X-Next-Page"

_SINCE = Query(None, description="From this instant (ISO 8601), included.", examples=["2026-11-01T00:00:00Z"])
_UNTIL = Query(None, description="Up to this instant (ISO 8601), excluded.", examples=["2026-11-02T00:00:00Z"])
_LIMIT = Query(1000, ge=1, le=10000, description="Most items in one page.")
_AFTER = Query(None, max_length=512, description="The previous page's `next`: the page after it.")
_FORMAT = Query("json", description="json (items and next) or csv (next in the X-Next-Page header).")


@cache
def legacy_shape() -> LegacyShape:
    return LegacyShape.load()


def history_stream(state: GatewayState, name: str, field: str = "stream") -> StreamSpec:
    spec = filter_stream(state, name, field)
    if spec.entity is None or spec.entity.history is None:
        raise invalid(field, f"stream {name!r} keeps no hourly history (its declaration has no entity.history)")
    return spec


def _sensors_stream(state: GatewayState) -> StreamSpec:
    """The SENSORS_STREAM stream; a gateway configured with one that keeps no
    history cannot serve the sensor routes."""
    name = state.settings.sensors_stream
    declared = state.catalog.entry(name)
    if declared is None or declared.spec.entity is None or declared.spec.entity.history is None:
        raise ApiError(503, f"SENSORS_STREAM names {name!r}, which is not a stream keeping an hourly history")
    return declared.spec


async def _deadline(state: GatewayState, what: str, call: Callable[[float], Awaitable[Any]]) -> Any:
    timeout = state.settings.dependency_timeout_seconds
    with unavailable(what):
        async with asyncio.timeout(timeout):
            return await call(timeout)


async def _page(
    state: GatewayState,
    stream: StreamSpec,
    *,
    key: str | None,
    key_field: str,
    area: str | None,
    since: datetime | None,
    until: datetime | None,
    after: str | None,
    limit: int,
    format: str,
) -> Response:
    if since is not None and until is not None and since >= until:
        raise invalid("until", f"must be after since ({since.isoformat()})")
    position = None
    if after is not None:
        try:
            position = decode_page_token(after)
        except ValueError as error:
            raise invalid("after", str(error)) from None
    if key is not None:
        known = await _deadline(state, "reading the history",
                                lambda t: history_queries.entity_known(state.pool, stream.name, key, t))
        if not known:
            raise invalid(key_field, f"unknown {key_field} {key[:64]!r} of stream {stream.name!r}")
    rows = await _deadline(
        state, "reading the history",
        lambda t: history_queries.history_page(state.pool, stream.name, key=key, area=area, since=since, until=until,
                                               after=position, limit=limit + 1, timeout=t),
    )
    items = [history_item(row) for row in rows[:limit]]
    following = encode_page_token(items[-1]["hour"], items[-1]["key"]) if len(rows) > limit else None
    if format == "csv":
        headers = {NEXT_PAGE_HEADER: following} if following else None
        return Response(history_csv(items), media_type="text/csv; charset=utf-8", headers=headers)
    return json_response({"stream": stream.name, "items": items, "next": following})


@router.get("/v1/streams/{stream}/history", summary="Hourly history of an entity stream, paged",
            responses={**ERROR_RESPONSES, **UNAVAILABLE})
async def stream_history(
    stream: str = Path(max_length=64),
    key: str | None = text_filter(128, description="One entity (e.g. a sensor id)."),
    area: str | None = text_filter(128, description="One area (e.g. a neighbourhood)."),
    since: datetime | None = _SINCE,
    until: datetime | None = _UNTIL,
    limit: int = _LIMIT,
    after: str | None = _AFTER,
    format: Literal["json", "csv"] = _FORMAT,
    state: GatewayState = Depends(get_state),
) -> Response:
    """Per entity and hour (UTC): the mean of the declared value, the declared
    deviation at the hour's latest reading, the alert state and the number of
    alerts and readings, with the entity's kind, area and place. Ordered by
    hour then key; give the answer's ``next`` as ``after`` for the next page."""
    spec = history_stream(state, stream)
    return await _page(state, spec, key=key, key_field="key", area=area, since=since, until=until, after=after,
                       limit=limit, format=format)


@router.get("/v1/sensors/history", summary="Hourly history of every sensor (SENSORS_STREAM), paged",
            responses={**ERROR_RESPONSES, **UNAVAILABLE})
async def sensors_history(
    sensor: str | None = text_filter(128, description="One sensor id."),
    neighbourhood: str | None = text_filter(128, description="One neighbourhood."),
    since: datetime | None = _SINCE,
    until: datetime | None = _UNTIL,
    limit: int = _LIMIT,
    after: str | None = _AFTER,
    format: Literal["json", "csv"] = _FORMAT,
    state: GatewayState = Depends(get_state),
) -> Response:
    """/v1/streams/{stream}/history for the stream named by SENSORS_STREAM
    (default pressure): ``sensor`` is the entity's key, ``neighbourhood`` its area."""
    spec = _sensors_stream(state)
    return await _page(state, spec, key=sensor, key_field="sensor", area=neighbourhood, since=since, until=until,
                       after=after, limit=limit, format=format)


def _today() -> datetime:
    return day_of(datetime.now(UTC))


@router.get("/dados_geral", summary="The original API: every sensor's hours of the last twelve months",
            responses={**UNAVAILABLE})
async def dados_geral(state: GatewayState = Depends(get_state)) -> Response:
    """As the original water-pressure API answered: a JSON array of every
    sensor's hours from a year ago to today (UTC), with the original's keys
    field for field (declared in legacy_sensors.yaml, the alert state as
    ``Normal`` or ``Anormal``). Streamed: the array is sent as it is read."""
    spec = _sensors_stream(state)
    shape = legacy_shape()
    today = _today()
    since, until = months_before(today, 12), today + timedelta(days=1)

    def fetch(after: tuple[datetime, str] | None) -> Callable[[float], Awaitable[list[dict[str, Any]]]]:
        return lambda t: history_queries.history_page(state.pool, spec.name, key=None, area=None, since=since,
                                                      until=until, after=after, limit=STREAM_CHUNK, timeout=t)

    first = await _deadline(state, "reading the history", fetch(None))

    async def body() -> AsyncIterator[bytes]:
        rows, separator = first, b"["
        while True:
            for row in rows:
                yield separator + orjson.dumps(shape.render(history_item(row)))
                separator = b","
            if len(rows) < STREAM_CHUNK:
                break
            try:
                rows = await _deadline(state, "reading the history", fetch((rows[-1]["hour"], rows[-1]["key"])))
            except ApiError as error:
                # The status is sent: the array is left unterminated, which no reader takes for whole.
                log.warning("history_stream_cut", error=error.detail)
                return
        yield b"]" if separator == b"," else b"[]"

    return StreamingResponse(body(), media_type="application/json")


@router.get("/dados_dia", summary="The original API: every sensor's latest hour of today",
            responses={**UNAVAILABLE})
async def dados_dia(state: GatewayState = Depends(get_state)) -> Response:
    """As the original water-pressure API answered: a JSON array with every
    sensor's row of today's latest hour (UTC), with the same keys as /dados_geral."""
    spec = _sensors_stream(state)
    shape = legacy_shape()
    today = _today()
    tomorrow = today + timedelta(days=1)
    hour = await _deadline(state, "reading the history",
                           lambda t: history_queries.latest_hour(state.pool, spec.name, today, tomorrow, t))
    if hour is None:
        return json_response([])
    rows = await _deadline(
        state, "reading the history",
        lambda t: history_queries.history_page(state.pool, spec.name, key=None, area=None, since=hour,
                                               until=hour + timedelta(hours=1), after=None, limit=MAX_HOUR_ROWS,
                                               timeout=t),
    )
    return json_response([shape.render(history_item(row)) for row in rows])
