"""Request and answer bodies, as they appear in the OpenAPI schema (with examples).

Examples use a user's stream, ``houses`` (declared in README's walk-through):
the gateway knows no stream's columns in code. Bodies of the single-row
scoring routes are described here but decoded with orjson in the route
itself (see routes/scoring.py); their JSON schema is derived from the
stream declaration (:func:`record_schema`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.streams import FieldSpec, FieldType


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class ErrorItem(BaseModel):
    field: str = Field(description="The field, column, parameter or JSON path at fault.")
    reason: str
    row: int | None = Field(None, description="For uploads: the row in the file (the header is row 1).")
    index: int | None = Field(None, description="For batches: the record's position in records (from 0).")


class ErrorBody(BaseModel):
    model_config = _examples(
        {"detail": "rooms: above maximum 50", "errors": [{"field": "rooms", "reason": "above maximum 50"}]}
    )
    detail: str
    errors: list[ErrorItem] = Field(default_factory=list)


class NoModelBody(BaseModel):
    detail: str
    stream: str
    task: str
    how_to_train: dict[str, Any]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {422: {"model": ErrorBody, "description": "Invalid input."}}
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong X-API-Key."}
}
NO_MODEL_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"model": NoModelBody, "description": "No model for this stream and task yet."}
}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "Kafka or PostgreSQL did not answer in time; nothing was done."}
}


def record_schema(fields: tuple[FieldSpec, ...]) -> dict[str, Any]:
    """JSON schema of one request record with these fields: numbers or numeric strings."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for spec in fields:
        if spec.numeric:
            number: dict[str, Any] = {"type": "number"}
            if spec.minimum is not None:
                number["minimum"] = spec.minimum
            if spec.maximum is not None:
                number["maximum"] = spec.maximum
            schema: dict[str, Any] = {"anyOf": [number, {"type": "string", "description": "a number written as a string"}]}
        elif spec.type is FieldType.CATEGORY and spec.categories and not spec.open:
            schema = {"type": "string", "enum": list(spec.categories)}
        elif spec.type is FieldType.BOOL:
            schema = {"anyOf": [{"type": "boolean"}, {"type": "string"}]}
        elif spec.type is FieldType.DATETIME:
            schema = {"type": "string", "format": "date-time"}
        else:
            schema = {"type": "string"}
        schema["description"] = spec.description or f"{spec.name} ({spec.type.value})"
        properties[spec.name] = schema
        if spec.required:
            required.append(spec.name)
    return {"type": "object", "properties": properties, "required": required}


def json_body(schema: dict[str, Any], examples: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a route that decodes its own JSON body."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": schema,
                    "examples": {name: {"value": value} for name, value in examples.items()},
                }
            },
        }
    }


class ClusterAnswer(BaseModel):
    stream: str
    task: str
    category: int = Field(description="The category; categories are numbered by their order_by feature's centre, rising.")
    model_id: int
    model_version: int
    center: dict[str, float] | None = Field(description="The category's centre, in the request's units.")
    distance: float | None = Field(description="Distance to that centre in the model's scaled space.")


class RegressionAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")
    stream: str
    task: str
    prediction: float = Field(description="The predicted target; also given under the target's own name.")
    model_id: int
    model_version: int


class BatchPredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"task": "price", "records": [{"area_m2": 72, "rooms": 3, "district": "north"},
                                              {"area_m2": "120", "rooms": 5, "district": "centre"}]},
                {"task": "price", "record": {"area_m2": 55, "rooms": 2, "district": "south"}},
            ]
        },
    )
    task: str | None = Field(None, description="Task of the stream; may be left out when the stream has one task.")
    record: dict[str, Any] | None = Field(None, description="One record.")
    records: list[dict[str, Any]] | None = Field(None, description="A batch of records, scored in one call.")


class ScoredRow(BaseModel):
    prediction: float = Field(description="The value, the class index or the category.")
    score: float | None = Field(
        None, description="Probability of the positive class (binary), of the predicted class (several), "
        "or distance to the nearest centre."
    )
    label: str | None = Field(None, description="Classification: the predicted class, as the stream's labels.")
    probabilities: dict[str, float] | None = Field(None, description="Classification: each class's probability.")


class BatchPredictAnswer(BaseModel):
    model_config = _examples(
        {"stream": "houses", "task": "price", "model_id": 8, "model_version": 2,
         "predictions": [{"prediction": 241000.0, "score": None}, {"prediction": 515500.0, "score": None}]}
    )
    stream: str
    task: str
    model_id: int
    model_version: int
    predictions: list[ScoredRow]


class RejectedRow(BaseModel):
    row: int = Field(description="Row in the file; the header is row 1.")
    field: str
    reason: str


class UploadAnswer(BaseModel):
    model_config = _examples(
        {"dataset_id": "4f5c0b1e6a2d4d3c9b8e7f6a5d4c3b2a", "stream": "houses", "filename": "houses.csv",
         "file_type": "csv", "size_bytes": 18211, "sha256": "9f2c...", "rows_total": 402,
         "rows_accepted": 400, "rows_rejected": 2,
         "rejected": [{"row": 17, "field": "rooms", "reason": "above maximum 50"},
                      {"row": 230, "field": "area_m2", "reason": "missing"}],
         "rejected_truncated": False, "ignored_columns": ["notes"], "topic": "raw.houses"}
    )
    dataset_id: str
    stream: str
    filename: str
    file_type: str
    size_bytes: int
    sha256: str
    rows_total: int
    rows_accepted: int
    rows_rejected: int
    rejected: list[RejectedRow]
    rejected_truncated: bool = Field(description="True when more rows were rejected than are listed.")
    ignored_columns: list[str]
    topic: str
    replayed: bool = Field(False, description="True when an upload under the same Idempotency-Key had completed "
                           "already: nothing was published again and the counts are the recorded ones.")


class TrainRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"stream": "houses", "task": "price"},
                {"stream": "houses", "task": "price", "algorithm": "mlp",
                 "hyperparameters": {"hidden_layer_sizes": [64, 32], "epochs": 300, "batch_size": 32,
                                     "learning_rate_init": 0.001, "early_stopping": True}},
                {"stream": "houses", "task": "price", "algorithm": "random_forest",
                 "hyperparameters": {"n_estimators": 200, "max_depth": 8}, "dataset_id": "4f5c0b1e6a2d4d3c9b8e7f6a5d4c3b2a"},
                {"stream": "houses", "task": "price", "source": "s3://fluxo-lake/exports"},
            ]
        },
    )
    stream: str = Field(description="A registered stream (GET /v1/streams).")
    task: str = Field(description="A task of the stream.")
    algorithm: str | None = Field(None, description="One the task allows; defaults to the task's default.")
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    window: int | None = Field(None, ge=10, description="Train on the newest N feature events.")
    dataset_id: str | None = Field(None, max_length=64, description="Train on one uploaded dataset.")
    source: str | None = Field(
        None, max_length=1024,
        description="Train on the data lake: an export id (its features files of the stream), or an s3:// URL or "
        "absolute path of exported features (a lake's root, or a directory or file of features Parquet).",
    )
    test_size: float = Field(0.2, gt=0.0, lt=0.9)
    force: bool = Field(False, description="Activate the new model even if it scores worse than the active one.")
    deploy: Literal["champion", "shadow"] | None = Field(
        None, description="champion: through the gate; shadow: scored beside the champion first. Default: the task's."
    )


class TrainAccepted(BaseModel):
    run_id: str
    status: str
    stream: str
    task: str
    status_url: str


class RunStatus(BaseModel):
    run_id: str
    stream: str
    task: str
    algorithm: str | None
    status: str = Field(description="queued, running, done or failed.")
    trigger: str
    model_id: int | None
    metrics: dict[str, float] | None
    decision: str | None = Field(description="activated, forced, rejected, undecided or shadow.")
    reason: str | None = Field(None, description="Why, in words: the gate's evidence.")
    gate_rows: int | None = Field(None, description="Held-out labelled events neither model was trained on.")
    candidate_score: float | None
    active_score: float | None
    error: str | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ModelOut(BaseModel):
    id: int
    stream: str
    task: str
    version: int
    algorithm: str
    hyperparameters: dict[str, Any]
    features: list[str]
    metrics: dict[str, float]
    evaluation: dict[str, Any] = Field(description="Classification: the classes and the confusion matrix (held-out rows).")
    training_window: dict[str, Any]
    rows: int = Field(description="Rows the model was trained on.")
    size_bytes: int
    sha256: dict[str, str]
    run_id: str | None
    active: bool
    shadow: bool = False
    alias: str | None = Field(None, description="champion (served), shadow (scored beside it, never served) or none.")
    monitoring: dict[str, Any] = Field(default_factory=dict, description="Latest drift (PSI per input) and degradation.")
    loaded: bool = Field(description="Whether this gateway serves it right now.")
    created_at: datetime
    history: list[ActivationOut] | None = Field(None, description="Its alias changes (GET /models/{id}).")


class ActivationOut(BaseModel):
    id: int
    stream: str
    task: str
    model_id: int
    alias: str = Field(description="What the model became: champion, shadow or retired.")
    previous_model_id: int | None = Field(description="The model that held that alias before.")
    trigger: str = Field(description="training, schedule, shadow, manual, drift or degradation.")
    actor: str
    reason: str
    created_at: datetime


class ActivateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alias: Literal["champion", "shadow", "retired"] = "champion"
    reason: str = Field("", max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")


class PredictionOut(BaseModel):
    event_id: str
    stream: str
    task: str
    key: str | None
    status: str
    model_id: int | None
    model_version: int
    prediction: float | None
    label: str | None = Field(None, description="Classification: the predicted class.")
    score: float | None
    actual: float | None
    actual_label: str | None = Field(None, description="Classification: the actual class, when known.")
    error: float | None = Field(description="prediction - actual, in the target's unit (classification: 0 right, 1 wrong).")
    percent_error: float | None = Field(None, description="Regression: the error relative to the actual value, in percent.")
    produced_at: datetime | None
    scored_at: datetime
    role: str = Field("champion", description="champion (served) or shadow.")


class AlertOut(BaseModel):
    event_id: str
    stream: str
    task: str | None
    key: str = Field(description="The entity (e.g. the sensor) the alert is about: the event's key.")
    area: str | None = Field(description="The entity's area (the stream's declared entity.area field).")
    latitude: float | None
    longitude: float | None
    value: float | None
    score: float
    model_version: int
    reading_at: datetime | None
    created_at: datetime


class Health(BaseModel):
    status: str


class LoadedModelInfo(BaseModel):
    stream: str
    task: str
    model_id: int
    version: int


class Ready(BaseModel):
    ready: bool
    kafka: bool
    postgres: bool
    models_synced: bool
    models: list[LoadedModelInfo]


class StreamVersion(BaseModel):
    version: int
    status: str = Field(description="active or archived.")
    created_at: datetime
    declaration: dict[str, Any]


class StreamOut(BaseModel):
    name: str
    version: int = Field(description="0: a built-in declaration not registered yet.")
    status: str
    description: str
    fields: list[str]
    tasks: list[str]
    topics: dict[str, str]
    declaration: dict[str, Any]
    versions: list[StreamVersion] | None = Field(None, description="Every registered version (GET /v1/streams/{name}).")


class EventsRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"record": {"area_m2": 72, "rooms": 3, "district": "north", "price": 250000}},
                {"records": [{"area_m2": 72, "rooms": 3, "district": "north"}],
                 "event_ids": ["device-7-000123"]},
            ]
        },
    )
    record: dict[str, Any] | None = Field(None, description="One record of the stream's fields.")
    records: list[dict[str, Any]] | None = Field(None, description="A batch of records.")
    event_ids: list[str] | None = Field(
        None, description="Your own id per record (1 to 64 characters): sending the same ids again after a "
        "failed call scores and stores nothing twice."
    )


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$",
                          description="The event the actual value belongs to.")
    values: dict[str, Any] = Field(min_length=1, description="Target field -> actual value.")


class LabelsRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"labels": [{"event_id": "7f3c0a...", "values": {"price": 251000}}]}]},
    )
    labels: list[LabelIn] = Field(min_length=1)


class LabelsAnswer(BaseModel):
    stream: str
    accepted: int
    topic: str


class EventsAnswer(BaseModel):
    stream: str
    accepted: int
    event_ids: list[str]
    topic: str


class InferAnswer(BaseModel):
    declaration: dict[str, Any] = Field(description="A declaration to review, edit and POST to /v1/streams.")
    ignored: list[dict[str, str]] = Field(description="Columns left out, with the reason.")
    notes: list[str]


ModelOut.model_rebuild()
