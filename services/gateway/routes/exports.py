"""The data lake on demand: POST /v1/exports queues an export for the
exporter, GET /v1/exports/{id} follows it (status, reason of a failure,
files and rows per stream and kind)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from services.gateway.auth import require_api_key
from services.gateway.errors import ApiError, invalid, json_response, unavailable
from services.gateway.routes.common import filter_stream
from services.gateway.schemas import AUTH_RESPONSES, ERROR_RESPONSES, UNAVAILABLE, ErrorBody, TrainRequest
from services.gateway.state import GatewayState, get_state
from shared.lake import manifest
from shared.lake.layout import FEATURES, KINDS
from shared.lake.addresses import LakeSourceError, check_address, is_export_id

router = APIRouter(tags=["data lake"])


class ExportRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{}, {"streams": ["houses"], "kinds": ["features", "predictions"]}]},
    )
    streams: list[str] = Field(default_factory=list, max_length=100, description="Streams to export (default: all).")
    kinds: list[str] = Field(
        default_factory=list, max_length=len(KINDS),
        description=f"What to export: {', '.join(KINDS)} (default: all of them).",
    )


async def _deadline(state: GatewayState, what: str, call: Any) -> Any:
    with unavailable(what):
        async with asyncio.timeout(state.settings.dependency_timeout_seconds):
            return await call


@router.post("/v1/exports", summary="Export streams to the data lake now", status_code=202,
             dependencies=[Depends(require_api_key)], responses={**ERROR_RESPONSES, **AUTH_RESPONSES, **UNAVAILABLE})
async def create_export(body: ExportRequest, state: GatewayState = Depends(get_state)) -> Response:
    """Queues an export the exporter runs next: each stream's rows not yet in
    the lake, as Parquet under ``<kind>/stream=<name>/date=<day>/``. Follow it
    at ``status_url``."""
    for i, name in enumerate(body.streams):
        filter_stream(state, name, f"streams[{i}]")
    for i, kind in enumerate(body.kinds):
        if kind not in KINDS:
            raise invalid(f"kinds[{i}]", f"unknown kind {kind[:40]!r} (kinds: {', '.join(KINDS)})")
    export_id = uuid.uuid4().hex
    streams, kinds = list(dict.fromkeys(body.streams)), list(dict.fromkeys(body.kinds))
    await _deadline(state, "queueing the export",
                    manifest.queue_export(state.pool, export_id, manifest.COMMAND, streams, kinds))
    return json_response({"id": export_id, "status": manifest.QUEUED, "streams": streams, "kinds": kinds,
                          "status_url": f"/v1/exports/{export_id}"}, status=202)


@router.get("/v1/exports/{export_id}", summary="An export's status, and its files per stream and kind",
            responses={404: {"model": ErrorBody, "description": "No such export."}, **UNAVAILABLE})
async def export_status(
    export_id: str = Path(max_length=64, examples=["5b0c6f6c1f9e4c49a0a4f1d1e2c3b4a5"]),
    state: GatewayState = Depends(get_state),
) -> Response:
    """``status``: queued, running, done or failed (``error`` then says why,
    e.g. ``destination: ...`` when the bucket did not answer; what it missed
    goes with the next export). ``parts``: files and rows per stream and kind."""
    found = await _deadline(state, "reading the export", manifest.export_status(state.pool, export_id))
    if found is None:
        raise ApiError(404, f"no export {export_id!r}")
    return json_response(found)


@router.get("/v1/exports", summary="Recent exports, newest first", responses={**UNAVAILABLE})
async def exports(limit: int = Query(20, ge=1, le=200), state: GatewayState = Depends(get_state)) -> Response:
    return json_response(await _deadline(state, "reading the exports", manifest.recent_exports(state.pool, limit)))


async def check_lake_source(state: GatewayState, body: TrainRequest, stream: str) -> None:
    """A train request's lake source: alone, and an export that holds the stream's
    features, or an address the trainer can try (it says in the run if it cannot read it)."""
    assert body.source is not None
    if body.window is not None or body.dataset_id is not None:
        raise invalid("source", "give a source, a window or a dataset_id, only one of them")
    if not is_export_id(body.source):
        try:
            check_address(body.source)
        except LakeSourceError as error:
            raise invalid("source", str(error)) from None
        return
    found = await _deadline(state, "reading the export", manifest.export_status(state.pool, body.source))
    if found is None:
        raise invalid("source", f"no export {body.source}")
    if not any(part["stream"] == stream and part["kind"] == FEATURES for part in found["parts"]):
        raise invalid("source", f"export {body.source} ({found['status']}) holds no features files of stream {stream!r}")
