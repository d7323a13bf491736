"""POST /train sends a train command; GET /train/{run_id} follows the run."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Path
from starlette.responses import Response

from services.gateway import queries
from services.gateway.auth import require_api_key
from services.gateway.errors import UNAVAILABLE_ERRORS, ApiError, dependency, invalid, json_response
from services.gateway.routes.common import stream_named, task_named
from services.gateway.routes.exports import check_lake_source
from services.gateway.schemas import AUTH_RESPONSES, ERROR_RESPONSES, ErrorBody, RunStatus, TrainAccepted, TrainRequest
from services.gateway.state import GatewayState, get_state
from shared.events import TrainCommand
from shared.kafka.clients import event_message
from shared.ml import registry
from shared.ml.hyperparams import HyperparameterError, resolve
from shared.ml.algorithms import UnknownAlgorithm, resolve_algorithm

router = APIRouter(tags=["training"])

_MAX_HYPERPARAMETER_BYTES = 4096


@router.post(
    "/train",
    summary="Train a model for a stream and task",
    status_code=202,
    dependencies=[Depends(require_api_key)],
    response_model=TrainAccepted,
    responses={**ERROR_RESPONSES, **AUTH_RESPONSES, 503: {"model": ErrorBody, "description": "Kafka is unreachable."}},
)
async def train(body: TrainRequest, state: GatewayState = Depends(get_state)) -> Response:
    """The trainer picks the command up from the commands topic; follow the run at
    ``status_url``. `curl -X POST $FLUXO_URL/train -H 'Content-Type: application/json'
    -d '{"stream": "houses", "task": "price"}'`"""
    return json_response(await start_training(body, state), status=202)


async def start_training(body: TrainRequest, state: GatewayState) -> dict[str, Any]:
    """Queue the run and send the command: the API route and the console's training
    form answer with it. Raises ApiError for every refusal."""
    stream = stream_named(state, body.stream)
    task = task_named(stream, body.task)
    try:
        algorithm = resolve_algorithm(task, body.algorithm)
        resolve(algorithm, body.hyperparameters, task.kind)
    except UnknownAlgorithm as error:
        raise invalid("algorithm", str(error)) from None
    except HyperparameterError as error:
        raise invalid("hyperparameters", str(error)) from None
    if body.window is not None and body.dataset_id is not None:
        raise invalid("window", "give a window or a dataset_id, not both")
    if body.source is not None:
        await check_lake_source(state, body, stream.name)
    timeout = state.settings.dependency_timeout_seconds
    if body.dataset_id is not None:
        async with dependency("reading the dataset", timeout):
            dataset = await queries.dataset_state(state.pool, body.dataset_id)
        if dataset is None:
            raise invalid("dataset_id", f"no uploaded dataset {body.dataset_id!r}")
        owner, status = dataset
        if owner != stream.name:
            raise invalid("dataset_id", f"dataset {body.dataset_id!r} belongs to stream {owner!r}, not {stream.name!r}")
        if status != "complete":
            raise invalid("dataset_id", f"the upload of dataset {body.dataset_id!r} did not complete: upload the "
                          "file again (with the same Idempotency-Key it completes this dataset)")
    command = TrainCommand(
        stream=stream.name,
        task=task.name,
        algorithm=body.algorithm,
        hyperparameters=body.hyperparameters,
        window=body.window,
        dataset_id=body.dataset_id,
        source=body.source,
        test_size=body.test_size,
        force=body.force,
        deploy=body.deploy,
    )
    if len(orjson.dumps(body.hyperparameters)) > _MAX_HYPERPARAMETER_BYTES:
        raise invalid("hyperparameters", f"too large (at most {_MAX_HYPERPARAMETER_BYTES} bytes of JSON)")
    request = command.model_dump(mode="json", include={"algorithm", "hyperparameters", "window", "dataset_id",
                                                       "source", "test_size", "force", "deploy"})
    # Recorded before it is sent, so GET /train/{run_id} knows the run at once,
    # and so that a command the trainer gets after this request was refused
    # finds its run abandoned and does not execute (registry.claim_run).
    async with dependency("recording the training run", timeout):
        await registry.queue_run(state.pool, command.run_id, stream.name, task.name, body.algorithm, request)
    message = event_message(state.topics.commands, command, f"{stream.name}/{task.name}")
    try:
        await state.publisher.send([message], timeout)
    except UNAVAILABLE_ERRORS as error:
        reason = f"abandoned: the command could not be sent ({type(error).__name__}: {str(error)[:200]})"
        try:
            async with asyncio.timeout(timeout):
                await registry.abandon_run(state.pool, command.run_id, reason)
            recorded = "it is recorded as failed and will not run"
        except UNAVAILABLE_ERRORS:
            # The command was discarded unsent (shared.kafka.guarded), so it cannot run either.
            recorded = "it was not sent and will not run"
        raise ApiError(503, f"Kafka did not take the train command ({type(error).__name__}); run "
                       f"{command.run_id} was not started: {recorded}. Send the request again.",
                       run_id=command.run_id, run_status="failed") from None
    return {
        "run_id": command.run_id,
        "status": "queued",
        "stream": stream.name,
        "task": task.name,
        "status_url": f"/train/{command.run_id}",
    }


@router.get(
    "/train/{run_id}",
    summary="Status of a training run (and its metrics when done)",
    response_model=RunStatus,
    responses={404: {"model": ErrorBody, "description": "No such run."}},
)
async def run_status(
    run_id: str = Path(max_length=64, examples=["5b0c6f6c1f9e4c49a0a4f1d1e2c3b4a5"]),
    state: GatewayState = Depends(get_state),
) -> RunStatus:
    async with dependency("reading the training run", state.settings.dependency_timeout_seconds):
        run = await registry.get_run(state.pool, run_id)
    if run is None:
        raise ApiError(404, f"no training run {run_id!r}")
    return RunStatus(**run.model_dump())
