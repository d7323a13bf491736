"""Streams as data: register, list, inspect, archive, infer from a file, send events.

`curl -X POST $FLUXO_URL/v1/streams -H 'Content-Type: application/yaml' --data-binary @houses.yaml`
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from fastapi import APIRouter, Depends, Header, Path, Request
from starlette.responses import Response

from services.gateway.auth import require_api_key
from services.gateway.declarations import CREATED, Incompatible, NoSuchStream, archive, register
from services.gateway.errors import ApiError, invalid, json_response, unavailable
from services.gateway.idempotency import HEADER, checked_key, request_event_ids
from services.gateway.routes.upload import received_table
from services.gateway.schemas import (
    AUTH_RESPONSES,
    ERROR_RESPONSES,
    UNAVAILABLE,
    ErrorBody,
    EventsAnswer,
    EventsRequest,
    InferAnswer,
    LabelsAnswer,
    LabelsRequest,
    StreamOut,
)
from services.gateway.state import GatewayState, get_state
from services.gateway.upload.events import API, encode_records
from services.gateway.upload.receive import FILE_FIELD
from shared.events import LabelEvent
from shared.kafka.clients import event_message
from shared.kafka.messages import Outgoing
from shared.streams import DeclarationInvalid, parse_declaration, read_declaration_text
from shared.streams import store as streams_store
from shared.streams.catalog import Declared
from shared.streams.declaration import STREAM_NAME, declaration_json_schema
from shared.streams.infer import InferenceError, infer_from_csv
from shared.validation import validate_batch

router = APIRouter(tags=["streams"])

_NAME = Path(max_length=48, pattern=STREAM_NAME, description="The stream's name.", examples=["houses"])
_MAX_DECLARATION_BYTES = 256 * 1024
_EVENT_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")

_DECLARATION_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {
                "type": "object", "description": "A stream declaration; its JSON Schema: GET /v1/streams/schema"}},
            "application/yaml": {"schema": {"type": "string", "description": "The same declaration in YAML."}},
        },
    }
}


def _describe(state: GatewayState, declared: Declared) -> dict[str, Any]:
    spec = declared.spec
    return {
        "name": spec.name,
        "version": declared.version,
        "status": declared.status,
        "description": spec.description,
        "fields": list(spec.field_names),
        "tasks": [task.name for task in spec.tasks],
        "topics": {"raw": state.topics.raw(spec.name), "features": state.topics.features(spec.name),
                   "predictions": state.topics.predictions(spec.name)},
        "declaration": spec.to_data(),
    }


def _declared(state: GatewayState, name: str) -> Declared:
    declared = state.catalog.entry(name)
    if declared is None:
        raise ApiError(404, f"no stream {name!r} (streams: {', '.join(state.catalog.names())})")
    return declared


def _problems(problems: list[Any]) -> list[dict[str, str]]:
    return [{"field": p.path or "declaration", "reason": p.reason} for p in problems]


@router.get("/v1/streams/schema", summary="The JSON Schema of a stream declaration (format version 1)")
async def declaration_schema() -> Response:
    return json_response(declaration_json_schema())


@router.post(
    "/v1/streams",
    summary="Register a stream, or a new version of one",
    status_code=201,
    dependencies=[Depends(require_api_key)],
    response_model=StreamOut,
    responses={
        200: {"model": StreamOut, "description": "The same declaration is already the latest version."},
        409: {"model": ErrorBody, "description": "Incompatible with the latest version; each problem named."},
        **ERROR_RESPONSES, **AUTH_RESPONSES, **UNAVAILABLE,
    },
    openapi_extra=_DECLARATION_BODY,
)
async def register_stream(request: Request, state: GatewayState = Depends(get_state)) -> Response:
    """A declaration in JSON or YAML. Every problem is listed with its JSON path (422).
    A compatible change (an optional field, a derived field, a task added...) becomes
    the next version; an incompatible one (a field removed or retyped...) is refused
    (409) and changes nothing. Every service picks the new version up within seconds."""
    answer, status = await register_declaration(state, await request.body())
    return json_response(answer, status)


async def register_declaration(state: GatewayState, body: bytes) -> tuple[dict[str, Any], int]:
    """Register a declaration (JSON or YAML text): (the stream as GET /v1/streams/{name}
    describes it, 201 or 200). Raises ApiError for every refusal; the API route and
    the console's register form answer with it."""
    if len(body) > _MAX_DECLARATION_BYTES:
        raise ApiError(413, f"a declaration is at most {_MAX_DECLARATION_BYTES} bytes")
    if not body.strip():
        raise invalid("body", "empty: send a stream declaration in JSON or YAML")
    try:
        spec = parse_declaration(read_declaration_text(body))
    except DeclarationInvalid as error:
        raise ApiError(422, f"invalid declaration: {error}", _problems(error.problems)) from None
    timeout = state.settings.dependency_timeout_seconds
    try:
        with unavailable(f"registering stream {spec.name!r}"):
            registration = await register(state, spec, timeout)
    except Incompatible as error:
        raise ApiError(409, f"incompatible with the latest version of {spec.name!r}: {error}",
                       _problems(error.problems)) from None
    stored = registration.stored
    declared = Declared(stored.spec, stored.version, stored.status)
    return _describe(state, declared), 201 if registration.outcome == CREATED else 200


@router.get("/v1/streams", summary="Every stream, with its current version", response_model=list[StreamOut])
async def list_streams(state: GatewayState = Depends(get_state)) -> Response:
    entries = sorted(state.catalog.entries(), key=lambda d: d.spec.name)
    return json_response([_describe(state, declared) for declared in entries])


@router.get("/v1/streams/{name}", summary="One stream, with every registered version", response_model=StreamOut,
            responses={404: {"model": ErrorBody, "description": "No such stream."}})
async def get_stream(name: str = _NAME, state: GatewayState = Depends(get_state)) -> Response:
    declared = _declared(state, name)
    with unavailable("reading the stream's versions"):
        async with asyncio.timeout(state.settings.dependency_timeout_seconds):
            versions = await streams_store.versions(state.pool, name)
    body = _describe(state, declared)
    body["versions"] = [
        {"version": v.version, "status": v.status, "created_at": v.created_at, "declaration": v.declaration}
        for v in versions
    ]
    body["inputs"] = {
        task.name: [field.model_dump(mode="json", exclude_defaults=True)
                    for field in state.request_schema(name, task.name).fields]
        for task in declared.spec.tasks
    } if declared.active else {}
    return json_response(body)


@router.delete(
    "/v1/streams/{name}",
    summary="Archive a stream: no more training or scoring; its data and models stay",
    dependencies=[Depends(require_api_key)],
    response_model=StreamOut,
    responses={404: {"model": ErrorBody, "description": "No such stream."}, **AUTH_RESPONSES, **UNAVAILABLE},
)
async def archive_stream(name: str = _NAME, state: GatewayState = Depends(get_state)) -> Response:
    try:
        with unavailable(f"archiving stream {name!r}"):
            stored = await archive(state, name, state.settings.dependency_timeout_seconds)
    except NoSuchStream:
        raise ApiError(404, f"no stream {name!r}") from None
    return json_response(_describe(state, Declared(stored.spec, stored.version, stored.status)))


@router.post(
    "/v1/streams/{name}/events",
    summary="Send one record or a batch to a stream (answered once Kafka has them)",
    dependencies=[Depends(require_api_key)],
    response_model=EventsAnswer,
    responses={**ERROR_RESPONSES, **AUTH_RESPONSES, **UNAVAILABLE},
)
async def send_events(
    body: EventsRequest,
    name: str = _NAME,
    idempotency_key: str | None = Header(None, alias=HEADER, description=(
        "Makes a retry safe: the records get ids derived from the key and their index, so a request sent again "
        "after a 503 publishes the same events, which downstream stores once (ignored when event_ids are given).")),
    state: GatewayState = Depends(get_state),
) -> Response:
    """The way a device or a script sends data over HTTP: every record is validated
    first (422 listing each invalid one by index; nothing is published then), then
    all are published to the stream's raw topic and the answer comes after Kafka
    acknowledged every one. Give an ``Idempotency-Key`` header (or ``event_ids``) to
    make a retry after a 503 safe."""
    key = checked_key(idempotency_key)
    declared = _declared(state, name)
    if not declared.active:
        raise invalid("name", f"stream {name!r} is archived")
    if (body.record is None) == (body.records is None):
        raise invalid("records", "send either record (one object) or records (a list), not both or neither")
    records: list[Any] = [body.record] if body.record is not None else list(body.records or [])
    if not records:
        raise invalid("records", "empty list")
    if len(records) > state.settings.max_events_per_call:
        raise invalid("records", f"{len(records)} records; at most {state.settings.max_events_per_call} per call")
    if body.event_ids is not None:
        if len(body.event_ids) != len(records):
            raise invalid("event_ids", f"{len(body.event_ids)} ids for {len(records)} records")
        for index, event_id in enumerate(body.event_ids):
            if not _EVENT_ID.match(event_id):
                raise invalid(f"event_ids[{index}]", "1 to 64 characters, no control characters")
    event_ids = body.event_ids
    if event_ids is None and key is not None:
        event_ids = request_event_ids(name, key, len(records))
    encoded = encode_records(declared.spec, records, source=API, event_ids=event_ids)
    if encoded.rejected:
        errors = [{"index": p.row, "field": p.field, "reason": p.reason} for p in encoded.rejected]
        raise ApiError(422, f"{len(errors)} of {len(records)} records are invalid; first: "
                       f"{errors[0]['field']}: {errors[0]['reason']}", errors[:1000])
    topic = state.topics.raw(name)
    with unavailable(f"publishing {len(records)} events to {topic}"):
        await state.publisher.send((Outgoing(topic, value, message_key) for message_key, value in encoded.messages),
                                   state.settings.dependency_timeout_seconds)
    return json_response({"stream": name, "accepted": len(encoded.messages), "event_ids": encoded.event_ids,
                          "topic": topic})


@router.post(
    "/v1/streams/{name}/labels",
    summary="Send the actual values of earlier events (answered once Kafka has them)",
    dependencies=[Depends(require_api_key)],
    response_model=LabelsAnswer,
    responses={**ERROR_RESPONSES, **AUTH_RESPONSES, **UNAVAILABLE},
)
async def send_labels(body: LabelsRequest, name: str = _NAME, state: GatewayState = Depends(get_state)) -> Response:
    """Each label names an event by id and gives the actual value of one or more of the
    stream's targets; it joins that event's stored predictions (prediction against
    actual, the rolling error per model version) and its training row. A label for an
    event not scored yet waits (CONSUMER_LABEL_TTL_SECONDS) and is then dead-lettered."""
    declared = _declared(state, name)
    if not declared.active:
        raise invalid("name", f"stream {name!r} is archived")
    spec = declared.spec
    if len(body.labels) > state.settings.max_events_per_call:
        raise invalid("labels", f"{len(body.labels)} labels; at most {state.settings.max_events_per_call} per call")
    targets = set(spec.targets)
    errors = []
    for index, label in enumerate(body.labels):
        unknown = sorted(set(label.values) - targets)
        if unknown:
            errors.append({"index": index, "field": unknown[0],
                           "reason": f"not a target of stream {name!r} (targets: {', '.join(sorted(targets)) or 'none'})"})
            continue
        fields = [spec.field(field).model_copy(update={"required": True}) for field in label.values]
        reasons = validate_batch(fields, [label.values]).reasons
        if reasons:
            field, _, why = reasons[0].partition(": ")
            errors.append({"index": index, "field": field, "reason": why})
    if errors:
        raise ApiError(422, f"{len(errors)} of {len(body.labels)} labels are invalid; first: "
                       f"{errors[0]['field']}: {errors[0]['reason']}", errors[:1000])
    topic = state.topics.labels(name)
    messages = [event_message(topic, LabelEvent(event_id=label.event_id, stream=name, values=label.values),
                              label.event_id) for label in body.labels]
    # A label is keyed by its event id: sent twice, the consumer joins the same values again.
    with unavailable(f"publishing {len(messages)} labels to {topic}"):
        await state.publisher.send(messages, state.settings.dependency_timeout_seconds)
    return json_response({"stream": name, "accepted": len(messages), "topic": topic})


@router.post(
    "/v1/streams/infer",
    summary="Propose a stream declaration from a CSV or XLSX file",
    dependencies=[Depends(require_api_key)],
    response_model=InferAnswer,
    responses={**ERROR_RESPONSES, **AUTH_RESPONSES},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [FILE_FIELD, "target"],
                        "properties": {
                            FILE_FIELD: {"type": "string", "format": "binary"},
                            "target": {"type": "string", "description": "The column to learn."},
                            "name": {"type": "string", "description": "The stream's name (default: from the file name)."},
                        },
                    }
                }
            },
        }
    },
)
async def infer_stream(request: Request, state: GatewayState = Depends(get_state)) -> Response:
    """Column types, bounds widened from the observed range, categories, ignored columns
    (ids, free text) with the reason, and a task whose kind follows the target (numeric:
    regression; few distinct values or boolean: classification). Nothing is registered:
    review it, edit it, then POST it to /v1/streams. Same limits and safety as /upload."""
    return json_response(await infer_table(request, state))


async def infer_table(request: Request, state: GatewayState) -> dict[str, Any]:
    """The inference itself, for the API route and the console's form; raises ApiError."""
    async with received_table(request, state.settings) as (fields, file, _, csv_path):
        target = fields.get("target", "").strip()
        if not target:
            raise invalid("target", "missing: name the column to learn")
        name = fields.get("name", "").strip() or _name_from(file.filename)
        if not re.match(STREAM_NAME, name):
            raise invalid("name", f"{name[:48]!r} is not a stream name (lower-case letters, digits and '_')")
        try:
            inference = await asyncio.to_thread(
                infer_from_csv, csv_path, name=name, target=target, max_rows=state.settings.max_upload_rows
            )
        except InferenceError as error:
            raise invalid(error.field, error.reason) from None
    return {
        "declaration": inference.declaration,
        "ignored": [{"column": i.column, "reason": i.reason} for i in inference.ignored],
        "notes": inference.notes,
    }


def _name_from(filename: str) -> str:
    stem = filename.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()
    name = re.sub(r"[^a-z0-9_]+", "_", stem).strip("_") or "stream"
    return name if name[0].isalpha() else f"s_{name}"
