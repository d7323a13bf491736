"""Scoring on request: the general /v1/streams/{stream}/predict, and the
original energy API's /predict (a clustering task) and /regress (a
regression task), whose stream and task are settings (LEGACY_CLUSTER_TASK,
LEGACY_REGRESSION_TASK; energy/cluster and energy/carbon by default).

A single record of a task whose inputs are all numeric fields is decoded
with orjson, checked value by value and scored as one numpy row: no
pydantic model and no pandas on that path.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from services.gateway import metrics
from services.gateway.errors import ApiError, invalid, json_response
from services.gateway.features import RequestSchema
from services.gateway.routes.common import decode_json, serving_model, stream_named, task_named
from services.gateway.schemas import (
    ERROR_RESPONSES,
    NO_MODEL_RESPONSES,
    BatchPredictAnswer,
    BatchPredictRequest,
    ClusterAnswer,
    RegressionAnswer,
    json_body,
    record_schema,
)
from services.gateway.settings import LEGACY_CLUSTER_TASK, LEGACY_REGRESSION_TASK
from services.gateway.state import GatewayState, get_state
from shared.ml.scores import Scores
from shared.ml.serving import MissingInput, ServingModel
from shared.streams import StreamSpec, TaskSpec, builtin_stream
from shared.validation import RecordInvalid

router = APIRouter(tags=["scoring"])


def score_records(
    state: GatewayState, spec: StreamSpec, task: TaskSpec, records: list[Any]
) -> tuple[ServingModel, Scores]:
    """Check ``records`` against the task's inputs (422 naming the field and,
    for a batch, the index), then score them with the model in service (503
    when there is none)."""
    schema = state.request_schema(spec.name, task.name)
    if len(records) == 1 and schema.direct:
        return _score_direct(state, schema, records[0])
    values, reasons = schema.check_many(records)
    if reasons:
        _refuse(records, reasons)
    model = serving_model(state, spec.name, task.name)
    # Records that leave optional features out are answered by the model
    # trained without them (a variant of the bundle), never by filling them in.
    answer = model.predict(values, len(records), task.optional_features)
    if answer.missing:
        _refuse(records, {index: f"{name}: missing" for index, name in answer.missing.items()})
    metrics.PREDICTIONS_SERVED.labels(spec.name, task.name).inc(len(records))
    return model, Scores(answer.prediction, answer.score, answer.probabilities)


def _score_direct(state: GatewayState, schema: RequestSchema, record: Any) -> tuple[ServingModel, Scores]:
    try:
        values = schema.check_one(record)
    except RecordInvalid as error:
        raise invalid(error.field, error.reason) from None
    model = serving_model(state, schema.stream.name, schema.task.name)
    try:
        variant, row = model.row(values, schema.task.optional_features)
    except MissingInput as error:
        raise invalid(error.name, "missing") from None
    scores = variant.score(row)
    metrics.PREDICTIONS_SERVED.labels(schema.stream.name, schema.task.name).inc()
    return model, scores


def _refuse(records: list[Any], reasons: dict[int, str]) -> None:
    if len(records) == 1:
        field, _, why = reasons[0].partition(": ")
        raise invalid(field, why)
    errors = []
    for index, reason in sorted(reasons.items()):
        field, _, why = reason.partition(": ")
        errors.append({"index": index, "field": field, "reason": why})
    raise ApiError(422, f"{len(errors)} of {len(records)} records are invalid; first: {reasons[min(reasons)]}",
                   errors[:1000])


def scored_rows(model: ServingModel, scores: Scores) -> list[dict[str, Any]]:
    predictions = scores.prediction.tolist()
    score_values: list[Any] = scores.score.tolist() if scores.score is not None else [None] * len(predictions)
    rows = [{"prediction": p, "score": s} for p, s in zip(predictions, score_values, strict=True)]
    labels = model.labels(scores.prediction)
    if labels is not None and scores.probabilities is not None and model.meta.classes is not None:
        classes = model.meta.classes
        for row, label, probabilities in zip(rows, labels, scores.probabilities.tolist(), strict=True):
            row["label"] = label
            row["probabilities"] = dict(zip(classes, probabilities, strict=True))
    return rows


def _legacy(setting: str) -> tuple[str, str]:
    stream, _, task = setting.partition("/")
    return stream, task


def _legacy_openapi(setting: str, name: str) -> dict[str, Any]:
    """The request body of a legacy route, from its built-in declaration."""
    stream_name, task_name = _legacy(setting)
    try:
        spec = builtin_stream(stream_name)
        task = spec.task(task_name)
    except KeyError:
        return {}
    schema = RequestSchema.of(spec, task)
    examples = {f"{name} {i + 1}": example for i, example in enumerate(task.examples)}
    return json_body(record_schema(schema.fields), examples)


async def _score_legacy(request: Request, setting: str) -> tuple[GatewayState, StreamSpec, TaskSpec, ServingModel, Scores]:
    # No dependency injection on the single-row routes: it costs more than the scoring.
    state = get_state(request)
    stream_name, task_name = _legacy(getattr(state.settings, setting))
    spec = stream_named(state, stream_name)
    task = task_named(spec, task_name)
    model, scores = score_records(state, spec, task, [decode_json(await request.body())])
    return state, spec, task, model, scores


@router.post(
    "/predict",
    summary="Category of one record (the original energy API; LEGACY_CLUSTER_TASK)",
    response_model=ClusterAnswer,
    responses={**ERROR_RESPONSES, **NO_MODEL_RESPONSES},
    openapi_extra=_legacy_openapi(LEGACY_CLUSTER_TASK, "original body"),
)
async def predict(request: Request) -> Response:
    """Numbers or numeric strings are accepted; the answer gives the category, the
    model version and the category's centre."""
    _, spec, task, model, scores = await _score_legacy(request, "legacy_cluster_task")
    category = int(scores.prediction[0])
    centres = model.meta.centers
    centre = None
    if centres is not None and 0 <= category < len(centres):
        centre = dict(zip(model.meta.features, map(float, centres[category]), strict=True))
    return json_response(
        {
            "stream": spec.name,
            "task": task.name,
            "category": category,
            "model_id": model.model_id,
            "model_version": model.version,
            "center": centre,
            "distance": None if scores.score is None else float(scores.score[0]),
        }
    )


@router.post(
    "/regress",
    summary="Predicted target of one record (the original energy API; LEGACY_REGRESSION_TASK)",
    response_model=RegressionAnswer,
    responses={**ERROR_RESPONSES, **NO_MODEL_RESPONSES},
    openapi_extra=_legacy_openapi(LEGACY_REGRESSION_TASK, "original body"),
)
async def regress(request: Request) -> Response:
    """Optional features may be left out: the answer then comes from the model
    trained without them."""
    _, spec, task, model, scores = await _score_legacy(request, "legacy_regression_task")
    prediction = float(scores.prediction[0])
    body: dict[str, Any] = {"stream": spec.name, "task": task.name}
    if task.target is not None:
        body[task.target] = prediction
    body.update({"prediction": prediction, "model_id": model.model_id, "model_version": model.version})
    return json_response(body)


@router.post(
    "/v1/streams/{stream}/predict",
    summary="Score one record or a batch for any stream and task",
    response_model=BatchPredictAnswer,
    responses={**ERROR_RESPONSES, **NO_MODEL_RESPONSES},
)
async def predict_batch(
    stream: str, body: BatchPredictRequest, state: GatewayState = Depends(get_state)
) -> Response:
    """Send ``record`` (one object) or ``records`` (a list, up to MAX_BATCH_ROWS) with
    the task's inputs (GET /v1/streams/{stream} lists them); every record is checked
    first and the batch is scored in one vectorized call. Classification answers
    carry the class label and every class's probability."""
    spec = stream_named(state, stream)
    task = task_named(spec, body.task)
    records = _records(body, state.settings.max_batch_rows)
    model, scores = score_records(state, spec, task, records)
    return json_response(
        {
            "stream": spec.name,
            "task": task.name,
            "model_id": model.model_id,
            "model_version": model.version,
            "predictions": scored_rows(model, scores),
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

