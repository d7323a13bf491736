"""Lookups every route family needs, answering 422 or 503 the same way."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Query

from services.gateway.errors import ApiError, invalid
from services.gateway.state import GatewayState
from shared.ml.serving import ServingModel
from shared.streams import StreamSpec, TaskSpec
from shared.streams.catalog import UnknownStream


def stream_named(state: GatewayState, name: str, field: str = "stream") -> StreamSpec:
    try:
        return state.catalog.get(name)
    except UnknownStream as error:
        raise invalid(field, str(error)) from None


def filter_stream(state: GatewayState, name: str, field: str = "stream") -> StreamSpec:
    """A stream named in a read-only filter: archived streams' data stays readable."""
    declared = state.catalog.entry(name)
    if declared is None:
        raise invalid(field, f"unknown stream {name[:48]!r} (streams: {', '.join(state.catalog.names())})")
    return declared.spec


def task_named(stream: StreamSpec, name: str | None, field: str = "task") -> TaskSpec:
    known = ", ".join(t.name for t in stream.tasks)
    if name is None:
        if len(stream.tasks) == 1:
            return stream.tasks[0]
        raise invalid(field, f"required: stream {stream.name!r} has several tasks ({known})")
    for task in stream.tasks:
        if task.name == name:
            return task
    raise invalid(field, f"stream {stream.name!r} has no task {name[:40]!r} (tasks: {known})")


def no_model(stream: str, task: str) -> ApiError:
    body = {"stream": stream, "task": task}
    return ApiError(
        503,
        f"no model for stream {stream!r} and task {task!r} yet: send data (POST /upload or the generator), "
        f"then train one with POST /train {orjson.dumps(body).decode()}",
        stream=stream,
        task=task,
        how_to_train={
            "method": "POST",
            "path": "/train",
            "body": body,
            "curl": f"curl -X POST $FLUXO_URL/train -H 'Content-Type: application/json' "
            f"-d '{orjson.dumps(body).decode()}'",
        },
    )


def serving_model(state: GatewayState, stream: str, task: str) -> ServingModel:
    model = state.models.get(stream, task)
    if model is None:
        raise no_model(stream, task)
    return model


def decode_json(body: bytes) -> Any:
    if not body.strip():
        raise invalid("body", "empty: send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise invalid("body", f"invalid JSON ({error})") from None


# PostgreSQL text cannot hold NUL, and no stream, task or place name has a
# control character: such a filter is a 422 naming the parameter, never a 500.
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


def text_filter(max_length: int, **kwargs: Any) -> Any:
    """An optional free-text query filter that reaches SQL."""
    return Query(None, max_length=max_length, pattern=_PRINTABLE, **kwargs)
