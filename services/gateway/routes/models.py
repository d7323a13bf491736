"""The model registry: list, inspect, download, and change which model serves
(promote a shadow, roll back to an earlier version, retire a shadow)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from services.gateway.auth import require_api_key
from services.gateway.errors import ApiError, invalid, unavailable
from services.gateway.routes.common import filter_stream, task_named, text_filter
from services.gateway.schemas import (
    AUTH_RESPONSES,
    ERROR_RESPONSES,
    UNAVAILABLE,
    ActivateRequest,
    ActivationOut,
    ErrorBody,
    ModelOut,
)
from services.gateway.state import GatewayState, get_state
from shared.ml import registry
from shared.ml.bundle import JOBLIB_FILE, BundleIntegrityError, verified_bytes
from shared.ml.publish import model_message
from shared.ml.registry import ModelRecord

router = APIRouter(tags=["models"])

SHA256_HEADER = "X-Content-SHA256"
_MODEL_ID = Path(ge=1, le=2**62, description="Registry id of the model.", examples=[1])


def _out(record: ModelRecord, state: GatewayState) -> ModelOut:
    loaded = state.models.get(record.stream, record.task)
    return ModelOut(
        **record.model_dump(exclude={"rows_trained"}),
        rows=record.rows_trained,
        alias=record.alias,
        loaded=loaded is not None and loaded.model_id == record.id,
    )


async def _record(state: GatewayState, model_id: int) -> ModelRecord:
    record = await registry.get_model(state.pool, model_id)
    if record is None:
        raise ApiError(404, f"no model {model_id}")
    return record


@router.get("/models", summary="Models in the registry, newest first", response_model=list[ModelOut],
            responses=ERROR_RESPONSES)
async def list_models(
    stream: str | None = text_filter(64, examples=["energy"]),
    task: str | None = text_filter(64, examples=["carbon"]),
    limit: int = Query(100, ge=1, le=1000),
    state: GatewayState = Depends(get_state),
) -> list[ModelOut]:
    if stream is not None:
        spec = filter_stream(state, stream)
        if task is not None:
            task_named(spec, task)
    records = await registry.list_models(state.pool, stream, task, limit)
    return [_out(record, state) for record in records]


@router.get("/models/activations", summary="Who became champion or shadow, when, by whom and why, newest first",
            response_model=list[ActivationOut], responses=ERROR_RESPONSES)
async def list_activations(
    stream: str | None = text_filter(64, examples=["energy"]),
    task: str | None = text_filter(64, examples=["carbon"]),
    limit: int = Query(100, ge=1, le=1000),
    state: GatewayState = Depends(get_state),
) -> list[ActivationOut]:
    with unavailable("reading the activation history"):
        rows = await registry.activations(state.pool, stream, task, None, limit)
    return [ActivationOut(**row.model_dump()) for row in rows]


@router.get("/models/{model_id}", summary="One model, with its alias history", response_model=ModelOut,
            responses={404: {"model": ErrorBody, "description": "No such model."}})
async def get_model(model_id: int = _MODEL_ID, state: GatewayState = Depends(get_state)) -> ModelOut:
    out = _out(await _record(state, model_id), state)
    history = await registry.activations(state.pool, model_id=model_id)
    return out.model_copy(update={"history": [ActivationOut(**row.model_dump()) for row in history]})


@router.post(
    "/models/{model_id}/activate",
    summary="Make a model the champion (promote a shadow, roll back to an earlier version), the shadow, or retire it",
    dependencies=[Depends(require_api_key)],
    response_model=ModelOut,
    responses={404: {"model": ErrorBody, "description": "No such model."},
               409: {"model": ErrorBody, "description": "The alias contradicts the model's role (the champion as "
                     "its own shadow, retiring a model that is not the shadow)."},
               **ERROR_RESPONSES, **AUTH_RESPONSES, **UNAVAILABLE},
)
async def activate(body: ActivateRequest, model_id: int = _MODEL_ID, state: GatewayState = Depends(get_state)) -> ModelOut:
    """Every consumer and gateway follows within seconds (the change goes out on the
    models topic; each re-reads the registry). The change is recorded with its
    reason in the activation history (trigger ``manual``)."""
    record = await _record(state, model_id)
    if record.stream not in state.catalog:
        raise invalid("model_id", f"model {model_id} belongs to stream {record.stream!r}, which is archived")
    reason = body.reason or f"{body.alias} by request"
    with unavailable(f"making model {model_id} the {body.alias}"):
        async with asyncio.timeout(state.settings.dependency_timeout_seconds):
            try:
                changed = await registry.set_alias(state.pool, model_id, body.alias, trigger="manual", actor="api",
                                                   reason=reason)
            except registry.AliasConflict as error:
                raise ApiError(409, str(error)) from None
            await state.publisher.send([model_message(state.topics, changed)], state.settings.dependency_timeout_seconds)
    return _out(changed, state)


_DOWNLOAD = {
    "summary": "Download a model's joblib artifact (its sha256 in the X-Content-SHA256 header)",
    "dependencies": [Depends(require_api_key)],
    "response_class": Response,
    "responses": {
        200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
              "description": "The artifact, checked against its registered sha256 before sending.",
              "headers": {SHA256_HEADER: {"schema": {"type": "string"}, "description": "sha256 of the body"}}},
        404: {"model": ErrorBody, "description": "No such model."},
        409: {"model": ErrorBody, "description": "The stored artifact no longer matches its sha256."},
        **AUTH_RESPONSES,
    },
}


async def _download(model_id: int, state: GatewayState) -> Response:
    record = await _record(state, model_id)
    try:
        # One read, hashed and sent: the bytes checked are the bytes served.
        content = await asyncio.to_thread(
            verified_bytes, state.settings.artifact_dir, record.bundle_dir, JOBLIB_FILE, record.sha256
        )
    except BundleIntegrityError as error:
        raise ApiError(409, f"model {model_id}'s artifact failed its integrity check: {error}") from None
    filename = f"{record.stream}-{record.task}-v{record.version}.joblib"
    return Response(
        content,
        media_type="application/octet-stream",
        headers={
            SHA256_HEADER: record.sha256[JOBLIB_FILE],
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


@router.get("/models/{model_id}/download", **_DOWNLOAD)
async def download_model(model_id: int = _MODEL_ID, state: GatewayState = Depends(get_state)) -> Response:
    return await _download(model_id, state)


@router.get("/model/{model_id}", **_DOWNLOAD)
async def download_model_legacy(model_id: int = _MODEL_ID, state: GatewayState = Depends(get_state)) -> Response:
    """The same download at the path the original training backend planned."""
    return await _download(model_id, state)
