"""Request and answer bodies, as they appear in the OpenAPI schema (with examples).

Bodies of the single-row scoring routes are described here but decoded with
orjson in the route itself (see routes/scoring.py); their JSON schema is
derived from the stream declaration, not written out by hand.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from services.gateway.features import task_fields
from shared.streams import ENERGY, StreamSpec, TaskSpec


class ErrorItem(BaseModel):
    field: str = Field(description="The field, column or parameter at fault.")
    reason: str
    row: int | None = Field(None, description="For uploads: the row in the file (the header is row 1).")
    index: int | None = Field(None, description="For batches: the record's position in records (from 0).")


class ErrorBody(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": "renewables_share_energy: above maximum 100",
                    "errors": [{"field": "renewables_share_energy", "reason": "above maximum 100"}],
                }
            ]
        }
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


def record_schema(stream: StreamSpec, task: TaskSpec) -> dict[str, Any]:
    """JSON schema of one record for ``task``: numbers or numeric strings."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for spec in task_fields(stream, task):
        number: dict[str, Any] = {"type": "number"}
        if spec.minimum is not None:
            number["minimum"] = spec.minimum
        if spec.maximum is not None:
            number["maximum"] = spec.maximum
        properties[spec.name] = {
            "anyOf": [number, {"type": "string", "description": "a number written as a string"}],
            "description": spec.description or f"{spec.name} ({spec.type.value})",
        }
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


CLUSTER = ENERGY.task("cluster")
CARBON = ENERGY.task("carbon")
PREDICT_EXAMPLE = {
    "renewables_share_energy": "0.053", "fossil_share_energy": "99.947", "carbon_intensity_elec": "508.162"
}
REGRESS_EXAMPLE = {"renewables_share_energy": "0.480"}


class ClusterAnswer(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "stream": "energy", "task": "cluster", "category": 2, "model_id": 7, "model_version": 3,
                    "center": {"renewables_share_energy": 4.1, "fossil_share_energy": 95.2,
                               "carbon_intensity_elec": 610.4},
                    "distance": 0.41,
                }
            ]
        }
    )
    stream: str
    task: str
    category: int = Field(description="Energy-mix category; categories are numbered by rising carbon intensity.")
    model_id: int
    model_version: int
    center: dict[str, float] | None = Field(description="The category's centre, in the request's units.")
    distance: float | None = Field(description="Distance to that centre in the model's scaled space.")


assert CARBON.target is not None
RegressionAnswer = create_model(
    "RegressionAnswer",
    __config__=ConfigDict(
        json_schema_extra={
            "examples": [
                {"stream": "energy", "task": "carbon", CARBON.target: 431.7, "prediction": 431.7,
                 "model_id": 8, "model_version": 2}
            ]
        }
    ),
    stream=(str, ...),
    task=(str, ...),
    prediction=(float, Field(description=f"Predicted {CARBON.target}.")),
    model_id=(int, ...),
    model_version=(int, ...),
    **{CARBON.target: (float, Field(description="Same as prediction, under the target's own name."))},
)


class BatchPredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"task": "carbon", "records": [{"renewables_share_energy": 12.5}, {"renewables_share_energy": "40"}]},
                {"task": "anomaly", "record": {"pressure_mca": 31.2, "media_hora": 30.8, "media_30d": 29.9,
                                               "std_30d": 1.4, "dif_media": 0.9, "media_hora_relativa": 1.0}},
            ]
        },
    )
    task: str | None = Field(None, description="Task of the stream; may be left out when the stream has one task.")
    record: dict[str, Any] | None = Field(None, description="One record.")
    records: list[dict[str, Any]] | None = Field(None, description="A batch of records, scored in one call.")


class ScoredRow(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "prediction": 431.7,
                    "score": None,
                }
            ]
        }
    )

    prediction: float
    score: float | None = Field(
        None, description="Probability of the positive class, or distance to the nearest centre."
    )


class BatchPredictAnswer(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "stream": "energy",
                    "task": "carbon",
                    "model_id": 8,
                    "model_version": 2,
                    "predictions": [{"prediction": 812.4, "score": None}, {"prediction": 590.1, "score": None}],
                }
            ]
        }
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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dataset_id": "4f5c0b1e6a2d4d3c9b8e7f6a5d4c3b2a", "stream": "energy", "filename": "energy.csv",
                    "file_type": "csv", "size_bytes": 18211, "sha256": "9f2c...", "rows_total": 402,
                    "rows_accepted": 400, "rows_rejected": 2,
                    "rejected": [{"row": 17, "field": "fossil_share_energy", "reason": "above maximum 100"},
                                 {"row": 230, "field": "country", "reason": "missing"}],
                    "rejected_truncated": False, "ignored_columns": ["iso_code"], "topic": "raw.energy",
                }
            ]
        }
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


class TrainRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"stream": "energy", "task": "carbon"},
                {"stream": "energy", "task": "carbon", "algorithm": "random_forest",
                 "hyperparameters": {"n_estimators": 200, "max_depth": 8}, "window": 5000, "test_size": 0.2},
                {"stream": "energy", "task": "cluster", "dataset_id": "4f5c0b1e6a2d4d3c9b8e7f6a5d4c3b2a",
                 "force": True},
            ]
        },
    )
    stream: str = Field(description="energy, pressure or people.")
    task: str = Field(description="A task of the stream (energy: cluster, carbon; pressure: anomaly; people: income).")
    algorithm: str | None = Field(None, description="Defaults to the task's algorithm.")
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    window: int | None = Field(None, ge=10, description="Train on the newest N feature events.")
    dataset_id: str | None = Field(None, max_length=64, description="Train on one uploaded dataset.")
    test_size: float = Field(0.2, gt=0.0, lt=0.9)
    force: bool = Field(False, description="Activate the new model even if it scores worse than the active one.")


class TrainAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "run_id": "5b0c6f6c1f9e4c49a0a4f1d1e2c3b4a5",
                    "status": "queued",
                    "stream": "energy",
                    "task": "carbon",
                    "status_url": "/train/5b0c6f6c1f9e4c49a0a4f1d1e2c3b4a5",
                }
            ]
        }
    )

    run_id: str
    status: str
    stream: str
    task: str
    status_url: str


class RunStatus(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "run_id": "5b0c6f6c1f9e4c49a0a4f1d1e2c3b4a5",
                    "stream": "energy",
                    "task": "carbon",
                    "algorithm": "random_forest",
                    "status": "done",
                    "trigger": "command",
                    "model_id": 8,
                    "metrics": {"r2": 0.93, "mae": 21.5},
                    "decision": "activated",
                    "candidate_score": 0.93,
                    "active_score": 0.9,
                    "error": None,
                    "requested_at": "2025-01-01T12:00:00Z",
                    "started_at": "2025-01-01T12:00:01Z",
                    "finished_at": "2025-01-01T12:00:04Z",
                }
            ]
        }
    )

    run_id: str
    stream: str
    task: str
    algorithm: str | None
    status: str = Field(description="queued, running, done or failed.")
    trigger: str
    model_id: int | None
    metrics: dict[str, float] | None
    decision: str | None
    candidate_score: float | None
    active_score: float | None
    error: str | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ModelOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 8,
                    "stream": "energy",
                    "task": "carbon",
                    "version": 2,
                    "algorithm": "random_forest",
                    "hyperparameters": {"n_estimators": 200},
                    "features": ["renewables_share_energy", "fossil_share_energy"],
                    "metrics": {"r2": 0.93},
                    "training_window": {"dataset_id": "4f5c0b1e6a2d4d3c9b8e7f6a5d4c3b2a"},
                    "rows": 400,
                    "size_bytes": 812345,
                    "sha256": {"model.onnx": "9f2c...", "model.joblib": "0a1b...", "meta.json": "77aa..."},
                    "run_id": "5b0c6f6c1f9e4c49a0a4f1d1e2c3b4a5",
                    "active": True,
                    "loaded": True,
                    "created_at": "2025-01-01T12:00:04Z",
                }
            ]
        }
    )

    id: int
    stream: str
    task: str
    version: int
    algorithm: str
    hyperparameters: dict[str, Any]
    features: list[str]
    metrics: dict[str, float]
    training_window: dict[str, Any]
    rows: int = Field(description="Rows the model was trained on.")
    size_bytes: int
    sha256: dict[str, str]
    run_id: str | None
    active: bool
    loaded: bool = Field(description="Whether this gateway serves it right now.")
    created_at: datetime


class PredictionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_id": "0c9e...",
                    "stream": "energy",
                    "task": "carbon",
                    "key": "Brazil",
                    "status": "scored",
                    "model_id": 8,
                    "model_version": 2,
                    "prediction": 98.4,
                    "score": None,
                    "actual": 101.2,
                    "error": 2.8,
                    "produced_at": "2025-01-01T12:00:00Z",
                    "scored_at": "2025-01-01T12:00:00.050Z",
                }
            ]
        }
    )

    event_id: str
    stream: str
    task: str
    key: str | None
    status: str
    model_id: int | None
    model_version: int
    prediction: float | None
    score: float | None
    actual: float | None
    error: float | None
    produced_at: datetime | None
    scored_at: datetime


class AlertOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_id": "7d1f...",
                    "stream": "pressure",
                    "sensor_id": "S-014",
                    "neighbourhood": "Centro",
                    "latitude": -23.55,
                    "longitude": -46.63,
                    "value": 12.4,
                    "score": 0.97,
                    "model_version": 3,
                    "reading_at": "2025-01-01T12:00:00Z",
                    "created_at": "2025-01-01T12:00:00.080Z",
                }
            ]
        }
    )

    event_id: str
    stream: str
    sensor_id: str
    neighbourhood: str | None
    latitude: float | None
    longitude: float | None
    value: float
    score: float
    model_version: int
    reading_at: datetime | None
    created_at: datetime


class SensorOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sensor_id": "S-014",
                    "neighbourhood": "Centro",
                    "latitude": -23.55,
                    "longitude": -46.63,
                    "sensor_type": "pressure",
                    "pressure_mca": 12.4,
                    "media_hora": 12.9,
                    "media_30d": 30.2,
                    "std_30d": 1.6,
                    "last_score": 0.97,
                    "alert": True,
                    "alerts_24h": 3,
                    "last_alert_at": "2025-01-01T12:00:00Z",
                    "reading_at": "2025-01-01T12:00:00Z",
                    "updated_at": "2025-01-01T12:00:00.080Z",
                }
            ]
        }
    )

    sensor_id: str
    neighbourhood: str | None
    latitude: float | None
    longitude: float | None
    sensor_type: str | None
    pressure_mca: float | None
    media_hora: float | None = Field(description="Latest hourly mean pressure (mca).")
    media_30d: float | None
    std_30d: float | None = Field(description="30-day standard deviation (mca).")
    last_score: float | None
    alert: bool = Field(description="Whether the latest reading was classified abnormal.")
    alerts_24h: int = Field(description="Alerts raised for this sensor in the last 24 hours.")
    last_alert_at: datetime | None
    reading_at: datetime | None
    updated_at: datetime


class Health(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                }
            ]
        }
    )

    status: str


class LoadedModelInfo(BaseModel):
    stream: str
    task: str
    model_id: int
    version: int


class Ready(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ready": True,
                    "kafka": True,
                    "postgres": True,
                    "models_synced": True,
                    "models": [{"stream": "energy", "task": "carbon", "model_id": 8, "version": 2}],
                }
            ]
        }
    )

    ready: bool
    kafka: bool
    postgres: bool
    models_synced: bool
    models: list[LoadedModelInfo]
