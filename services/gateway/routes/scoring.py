"""Scoring on request: /predict and /regress (the original energy API's bodies)
and the general /v1/streams/{stream}/predict.

The single-row routes decode their body with orjson, check it value by value
and score one numpy row: no pydantic model and no pandas on that path.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from services.gateway import metrics
from services.gateway.errors import ApiError, invalid, json_response
from services.gateway.loaded import LoadedModel
from services.gateway.routes.common import (
    decode_json,
    request_schema,
    serving_model,
    stream_named,
    task_named,
)
from services.gateway.schemas import (
    CARBON,
    CLUSTER,
    ERROR_RESPONSES,
    NO_MODEL_RESPONSES,
    PREDICT_EXAMPLE,
    REGRESS_EXAMPLE,
    BatchPredictAnswer,
    BatchPredictRequest,
    ClusterAnswer,
    RegressionAnswer,
    json_body,
    record_schema,
)
from services.gateway.state import GatewayState, get_state
from shared.ml.serving import MissingFeature
from shared.streams import ENERGY
from shared.validation import RecordInvalid

router = APIRouter(tags=["scoring"])


def _score_one(state: GatewayState, task: str, body: bytes) -> tuple[LoadedModel, float, float | None]:
    schema = request_schema(ENERGY.name, task)
    try:
        values = schema.check_one(decode_json(body))
    except RecordInvalid as error:
        raise invalid(error.field, error.reason) from None
    model = serving_model(state, ENERGY.name, task)
    try:
        row = model.row(values)
    except MissingFeature as error:
        raise invalid(error.feature, "missing") from None
    scores = model.score(row)
    metrics.PREDICTIONS_SERVED.labels(ENERGY.name, task).inc()
    score = None if scores.score is None else float(scores.score[0])
    return model, float(scores.prediction[0]), score


@router.post(
    "/predict",
    summary="Energy-mix category of one record (energy / cluster)",
    response_model=ClusterAnswer,
    responses={**ERROR_RESPONSES, **NO_MODEL_RESPONSES},
    openapi_extra=json_body(record_schema(ENERGY, CLUSTER), {"original Flask body": PREDICT_EXAMPLE}),
)
async def predict(request: Request) -> Response:
    """Numbers or numeric strings are accepted; the answer gives the category, the
    model version and the category's centre."""
    # No dependency injection on the single-row routes: it costs more than the scoring.
    model, prediction, distance = _score_one(get_state(request), CLUSTER.name, await request.body())
    category = int(prediction)
    centres = model.centres
    centre = centres[category] if centres is not None and 0 <= category < len(centres) else None
    return json_response(
        {
            "stream": ENERGY.name,
            "task": CLUSTER.name,
            "category": category,
            "model_id": model.model_id,
            "model_version": model.version,
            "center": centre,
            "distance": distance,
        }
    )


@router.post(
    "/regress",
    summary=f"Predicted {CARBON.target} of one record (energy / carbon)",
    response_model=RegressionAnswer,
    responses={**ERROR_RESPONSES, **NO_MODEL_RESPONSES},
    openapi_extra=json_body(record_schema(ENERGY, CARBON), {"original Flask body": REGRESS_EXAMPLE}),
)
async def regress(request: Request) -> Response:
    """Optional features left out are filled with their training mean."""
    model, prediction, _ = _score_one(get_state(request), CARBON.name, await request.body())
    assert CARBON.target is not None
    return json_response(
        {
            "stream": ENERGY.name,
            "task": CARBON.name,
            CARBON.target: prediction,
            "prediction": prediction,
            "model_id": model.model_id,
            "model_version": model.version,
        }
    )


@router.post(
    "/v1/streams/{stream}/predict",
    summary="Score one record or a batch for any stream and task",
    response_model=BatchPredictAnswer,
    responses={**ERROR_RESPONSES, **NO_MODEL_RESPONSES},
)
async def predict_batch(
    stream: str, body: BatchPredictRequest, state: GatewayState = Depends(get_state)
) -> Response:
    """Send ``record`` (one object) or ``records`` (a list, up to MAX_BATCH_ROWS);
    every record is checked first and the batch is scored in one vectorized call."""
    spec = stream_named(stream)
    task = task_named(spec, body.task)
    records = _records(body, state.settings.max_batch_rows)
    columns, reasons = request_schema(spec.name, task.name).check_many(records)
    if reasons:
        errors = []
        for index, reason in sorted(reasons.items()):
            field, _, why = reason.partition(": ")
            errors.append({"index": index, "field": field, "reason": why})
        raise ApiError(422, f"{len(errors)} of {len(records)} records are invalid; first: {reasons[min(reasons)]}",
                       errors[:1000])
    model = serving_model(state, spec.name, task.name)
    try:
        matrix = model.matrix(columns, len(records))
    except MissingFeature as error:
        raise invalid(error.feature, "missing") from None
    scores = model.score(matrix)
    metrics.PREDICTIONS_SERVED.labels(spec.name, task.name).inc(len(records))
    predictions = scores.prediction.tolist()
    score_values: list[Any] = scores.score.tolist() if scores.score is not None else [None] * len(predictions)
    return json_response(
        {
            "stream": spec.name,
            "task": task.name,
            "model_id": model.model_id,
            "model_version": model.version,
            "predictions": [{"prediction": p, "score": s} for p, s in zip(predictions, score_values, strict=True)],
        }
    )


def _records(body: BatchPredictRequest, limit: int) -> list[Any]:
    if (body.record is None) == (body.records is None):
        raise invalid("records", "send either record (one object) or records (a list), not both or neither")
    records: list[Any] = [body.record] if body.record is not None else list(body.records or [])
    if not records:
        raise invalid("records", "empty list")
    if len(records) > limit:
        raise invalid("records", f"{len(records)} records; at most {limit} per call")
    return records
