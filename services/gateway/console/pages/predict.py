"""Predict by hand (/predict-by-hand): a form generated from a task's declared
inputs, scored by the model in service exactly as POST /v1/streams/{stream}/predict
scores it. Not at /predict: POST /predict is the original energy API's route."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from services.gateway.console.pages.common import gateway, not_found
from services.gateway.console.templating import page, partial
from services.gateway.console.views.predict import (
    answer,
    example_values,
    form_fields,
    record_from_form,
    refusal,
)
from services.gateway.errors import ApiError
from services.gateway.routes.scoring import score_records, scored_rows
from services.gateway.state import GatewayState
from shared.streams import StreamSpec, TaskSpec

router = APIRouter(include_in_schema=False)


def _choices(state: GatewayState) -> list[tuple[StreamSpec, TaskSpec]]:
    return [(spec, task) for spec in state.catalog.active() for task in spec.tasks]


def _chosen(state: GatewayState, stream: str | None, task: str | None) -> tuple[StreamSpec, TaskSpec] | None:
    """The task asked for; without one, the first task that has a model in service (else the first task)."""
    choices = _choices(state)
    if stream:
        for spec, candidate in choices:
            if spec.name == stream and (task is None or candidate.name == task):
                return spec, candidate
        return None
    served = [(spec, t) for spec, t in choices if state.models.get(spec.name, t.name) is not None]
    return (served or choices or [None])[0]


@router.get("/predict-by-hand", response_class=HTMLResponse, name="console-predict")
async def predict_page(
    request: Request,
    stream: str | None = Query(None, max_length=64),
    task: str | None = Query(None, max_length=64),
    ref: str | None = Query(None, max_length=130, description="stream/task, as the task picker sends it"),
) -> HTMLResponse:
    state = gateway(request)
    if ref and not stream:
        stream, _, task = ref.partition("/")
    chosen = _chosen(state, stream, task)
    if stream and chosen is None:
        return not_found(request, f"task {task or ''!r} of stream {stream!r}")
    context: dict[str, object] = {"choices": _choices(state), "spec": None, "task": None}
    if chosen is not None:
        spec, chosen_task = chosen
        fields = state.request_schema(spec.name, chosen_task.name).fields
        context.update(spec=spec, task=chosen_task, fields=form_fields(fields, example_values(chosen_task, fields)),
                       model=state.models.get(spec.name, chosen_task.name), answer=None, refused=None)
    return page(request, "predict.html", active="predict", title="Predict by hand", **context)


@router.post("/predict-by-hand/{stream}/{task}", response_class=HTMLResponse, name="console-predict-answer")
async def predict_answer(request: Request, stream: str, task: str) -> HTMLResponse:
    state = gateway(request)
    chosen = _chosen(state, stream, task)
    if chosen is None:
        return not_found(request, f"task {task!r} of stream {stream!r}")
    spec, chosen_task = chosen
    fields = state.request_schema(spec.name, chosen_task.name).fields
    record, given = record_from_form(fields, await request.form())
    context = {"spec": spec, "task": chosen_task, "model": state.models.get(spec.name, chosen_task.name)}
    try:
        model, scores = score_records(state, spec, chosen_task, [record])
    except ApiError as error:
        why = refusal(error, fields)
        return partial(request, "partials/predict_panel.html", status=error.status,
                       fields=form_fields(fields, given, why.by_field), answer=None, refused=why, **context)
    row = scored_rows(model, scores)[0]
    return partial(request, "partials/predict_panel.html", fields=form_fields(fields, given), refused=None,
                   answer=answer(spec.name, chosen_task, model.model_id, model.version, row), **context)
