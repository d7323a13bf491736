"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.responses import Response

from services.gateway.errors import json_response
from services.gateway.schemas import Health, Ready
from services.gateway.state import GatewayState, get_state

router = APIRouter(tags=["operations"])


@router.get("/health", summary="The process is alive", response_model=Health)
async def health() -> Health:
    return Health(status="ok")


async def _reachable(check: asyncio.Future | object, timeout: float) -> bool:
    try:
        await asyncio.wait_for(check, timeout)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - any failure means "not reachable" here
        return False
    return True


@router.get("/ready", summary="Kafka and PostgreSQL reachable, models synced with the registry",
            response_model=Ready, responses={503: {"model": Ready, "description": "Not ready."}})
async def ready(state: GatewayState = Depends(get_state)) -> Response:
    timeout = state.settings.ready_timeout_seconds
    kafka, postgres = await asyncio.gather(
        state.publisher.reachable(timeout),
        _reachable(state.pool.fetchval("SELECT 1"), timeout),
    )
    if not postgres:
        # The models in hand keep answering, but nobody can tell whether the
        # registry still names them; the models task re-syncs once it can.
        state.models.mark_stale()
    models = [
        {"stream": m.meta.stream, "task": m.meta.task, "model_id": m.model_id, "version": m.version}
        for m in state.models.loaded()
    ]
    is_ready = kafka and postgres and state.models.synced
    body = {"ready": is_ready, "kafka": kafka, "postgres": postgres, "models_synced": state.models.synced,
            "models": models}
    return json_response(body, 200 if is_ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."}})
async def prometheus_metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
