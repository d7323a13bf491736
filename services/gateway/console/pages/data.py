"""Data and training (/data): upload a file, infer and register a stream from
one, start a training run and follow it. Every form here changes something,
so each needs the API key when the gateway has one, as the API routes do."""

from __future__ import annotations

import yaml
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from services.gateway.console.pages.common import gateway, key_refusal, refused
from services.gateway.console.templating import page, partial
from services.gateway.console.views import models as registry_view
from services.gateway.console.views.guard import guarded
from services.gateway.console.views.training import FormInvalid, TrainForm, datasets, train_request
from services.gateway.errors import ApiError
from services.gateway.routes.streams import infer_table, register_declaration
from services.gateway.routes.training import start_training
from services.gateway.routes.upload import upload_table
from services.gateway.schemas import TrainRequest
from services.gateway.state import GatewayState
from shared.streams import StreamSpec, TaskSpec

router = APIRouter(include_in_schema=False)

FINISHED = ("done", "failed")


def _tasks(state: GatewayState) -> list[tuple[StreamSpec, TaskSpec]]:
    return [(spec, task) for spec in state.catalog.active() for task in spec.tasks]


def _task(state: GatewayState, ref: str | None) -> tuple[StreamSpec, TaskSpec] | None:
    tasks = _tasks(state)
    if ref:
        stream, _, name = ref.partition("/")
        return next(((s, t) for s, t in tasks if s.name == stream and t.name == name), None)
    return tasks[0] if tasks else None


async def _train_form(state: GatewayState, chosen: tuple[StreamSpec, TaskSpec], values: dict[str, str] | None = None,
                      errors: dict[str, str] | None = None) -> TrainForm:
    spec, task = chosen
    found = await guarded("datasets", state.settings.dependency_timeout_seconds, datasets(state.pool, spec.name))
    return TrainForm(spec, task, [a.value for a in task.allowed_algorithms], task.default.value,
                     found if isinstance(found, list) else [], values or {}, errors or {})


@router.get("/data", response_class=HTMLResponse, name="console-data")
async def data_page(request: Request) -> HTMLResponse:
    state = gateway(request)
    timeout = state.settings.dependency_timeout_seconds
    chosen = _task(state, None)
    return page(
        request, "data.html", active="data", title="Data and training",
        streams=state.catalog.names(), tasks=_tasks(state),
        train=await _train_form(state, chosen) if chosen else None,
        datasets=await guarded("datasets", timeout, datasets(state.pool)),
        runs=await guarded("training runs", timeout, registry_view.recent_runs(state.pool, 10)),
    )


@router.post("/data/upload", response_class=HTMLResponse, name="console-upload")
async def upload(request: Request) -> HTMLResponse:
    if (refusal := key_refusal(request)) is not None:
        return refusal
    try:
        answer = await upload_table(request, gateway(request))
    except ApiError as error:
        return refused(request, error)
    return partial(request, "partials/upload_result.html", answer=answer)


@router.post("/data/infer", response_class=HTMLResponse, name="console-infer")
async def infer(request: Request) -> HTMLResponse:
    if (refusal := key_refusal(request)) is not None:
        return refusal
    try:
        answer = await infer_table(request, gateway(request))
    except ApiError as error:
        return refused(request, error)
    text = yaml.safe_dump(answer["declaration"], sort_keys=False, allow_unicode=True, width=120)
    return partial(request, "partials/infer_result.html", answer=answer, declaration=text)


@router.post("/data/register", response_class=HTMLResponse, name="console-register")
async def register(request: Request) -> HTMLResponse:
    if (refusal := key_refusal(request)) is not None:
        return refusal
    form = await request.form()
    text = form.get("declaration")
    try:
        described, status = await register_declaration(gateway(request), str(text or "").encode())
    except ApiError as error:
        return refused(request, error)
    return partial(request, "partials/register_result.html", stream=described, created=status == 201)


@router.get("/data/train-form", response_class=HTMLResponse, name="console-train-form")
async def train_form(request: Request, ref: str = Query(max_length=130)) -> HTMLResponse:
    state = gateway(request)
    chosen = _task(state, ref)
    if chosen is None:
        return refused(request, ApiError(404, f"no task {ref!r}"))
    return partial(request, "partials/train_form.html", train=await _train_form(state, chosen), tasks=_tasks(state))


@router.post("/data/train", response_class=HTMLResponse, name="console-train")
async def train(request: Request) -> HTMLResponse:
    if (refusal := key_refusal(request)) is not None:
        return refusal
    state = gateway(request)
    form = {name: str(value) for name, value in (await request.form()).items()}
    chosen = _task(state, form.get("ref"))
    if chosen is None:
        return refused(request, ApiError(422, f"ref: no task {form.get('ref', '')[:130]!r}"))
    try:
        body = TrainRequest(**train_request(*chosen, form))
        accepted = await start_training(body, state)
    except FormInvalid as error:
        form_view = await _train_form(state, chosen, form, error.errors)
        return partial(request, "partials/train_form.html", status=422, train=form_view, tasks=_tasks(state))
    except ValidationError as error:
        errors = {".".join(map(str, e["loc"])): e["msg"] for e in error.errors()}
        form_view = await _train_form(state, chosen, form, errors)
        return partial(request, "partials/train_form.html", status=422, train=form_view, tasks=_tasks(state))
    except ApiError as error:
        by_field = {e["field"]: e["reason"] for e in error.errors if "field" in e}
        form_view = await _train_form(state, chosen, form, by_field or {"form": error.detail})
        return partial(request, "partials/train_form.html", status=error.status, train=form_view, tasks=_tasks(state))
    run = await registry_view.run(state.pool, accepted["run_id"])
    return partial(request, "partials/train_started.html", train=await _train_form(state, chosen, form),
                   tasks=_tasks(state), run=run, finished=FINISHED)


@router.get("/data/runs/{run_id}", response_class=HTMLResponse, name="console-run")
async def run_status(request: Request, run_id: str = Path(max_length=64)) -> HTMLResponse:
    state = gateway(request)
    run = await guarded("training run", state.settings.dependency_timeout_seconds, registry_view.run(state.pool, run_id))
    if run is None:
        return refused(request, ApiError(404, f"no training run {run_id!r}"))
    return partial(request, "partials/run_status.html", run=run, finished=FINISHED)
