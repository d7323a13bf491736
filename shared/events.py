"""Every event that crosses a Kafka topic, as a pydantic model.

One module is the schema (like a .proto file): producers build these models,
consumers parse into them. Each event carries ``event_id``, ``stream``,
``produced_at`` (UTC) and ``schema_version``. An event derived from another
(features from raw, a prediction from features) keeps the source's
``event_id``, so that a redelivered message maps onto the same rows.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_event_id() -> str:
    return uuid.uuid4().hex


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: str = Field(default_factory=new_event_id, min_length=1, max_length=64)
    stream: str
    produced_at: datetime = Field(default_factory=utcnow)
    schema_version: int = SCHEMA_VERSION

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="python"), option=orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS)


class RawEvent(Event):
    """A record as it arrived, before validation: ``data`` holds the stream's fields."""

    key: str
    data: dict[str, Any]
    source: str = "generator"
    dataset_id: str | None = None


class FeaturesEvent(Event):
    """A validated record with its model inputs, ready to train on and score.

    ``features`` holds every numeric column the record has (fields, time
    parts, derived and rolling values; absent optional ones are missing
    keys), ``categories`` its category fields' values, ``scaled`` the
    stream's scaled features (the online scaler's view).
    """

    key: str
    features: dict[str, float]
    categories: dict[str, str] = Field(default_factory=dict)
    scaled: dict[str, float]
    scaler_version: int
    # True target values when the record carries them (for training and for
    # prediction-versus-actual): numbers, or class labels as text; absent
    # targets are simply missing keys (a label may come later).
    targets: dict[str, float | str] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    source: str = "generator"
    dataset_id: str | None = None
    raw_produced_at: datetime | None = None


class StreamDeclared(Event):
    """A stream's declaration in force (``stream`` is its name); keyed by the
    name on the compacted streams topic, so the newest event per stream is
    its current version. ``archived`` streams are neither trained nor scored."""

    version: int = Field(ge=1)
    status: Literal["active", "archived"] = "active"
    declaration: dict[str, Any]


class LabelEvent(Event):
    """The actual value of an earlier event's target, arriving after it:
    ``event_id`` names that event, ``values`` maps target fields to values."""

    values: dict[str, float | int | bool | str] = Field(min_length=1)


class ScalerSnapshot(Event):
    """The normalizer's online StandardScaler state for one stream.

    ``offsets`` (raw partition -> offset): this state counts exactly the
    stream's raw records up to these offsets, all of them committed.
    ``windows_offsets``: every key's window snapshot (WindowSnapshot) is
    complete up to these offsets (see services/normalizer/checkpoint.py)."""

    version: int
    n_samples: int
    features: list[str]
    mean: list[float]
    var: list[float]
    offsets: dict[int, int] = Field(default_factory=dict)
    windows_offsets: dict[int, int] = Field(default_factory=dict)


class WindowSnapshot(Event):
    """One key's rolling-window state in one of a stream's rolling groups
    (shared.features.rolling), as of raw offsets ``applied`` (partition ->
    offset): it counts exactly that key's readings up to them. ``partition``
    is the raw partition of the key's newest reading: the one whose
    normalizer restores it."""

    group: str
    shape: str
    key: str
    partition: int
    applied: dict[int, int]
    state: dict[str, Any]


class TrainCommand(Event):
    run_id: str = Field(default_factory=new_event_id)
    task: str
    algorithm: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    window: int | None = Field(None, ge=10)
    dataset_id: str | None = None
    # The data lake: an export id, or an s3:// URL or local path of exported features.
    source: str | None = Field(None, max_length=1024)
    test_size: float = Field(0.2, gt=0.0, lt=0.9)
    force: bool = False
    # champion (through the gate) or shadow; None: the task's declared default.
    deploy: Literal["champion", "shadow"] | None = None
    # Who asked: command (a person), schedule, drift or degradation.
    trigger: str = Field("command", max_length=32)
    reason: str = Field("", max_length=500)


class ModelPublished(Event):
    """A bundle in the registry; keyed ``<stream>/<task>`` on a compacted topic,
    so the newest event per key is the active model."""

    task: str
    model_id: int
    version: int
    algorithm: str
    bundle_dir: str
    sha256: dict[str, str]
    features: list[str]
    metrics: dict[str, float]
    active: bool = True  # the champion
    shadow: bool = False


class Prediction(Event):
    """One task's output for one features event (``event_id`` is the source's)."""

    task: str
    key: str
    # unscored: no model yet (version 0); failed: the model of model_version raised.
    status: Literal["scored", "unscored", "failed"] = "scored"
    model_id: int | None = None
    model_version: int = 0
    # Classification: the class index, and the class as the stream's label.
    prediction: float | None = None
    label: str | None = None
    score: float | None = None
    actual: float | None = None
    actual_label: str | None = None
    error: float | None = None
    percent_error: float | None = None  # regression: error / |actual| * 100
    source_produced_at: datetime | None = None


class Alert(Event):
    """A positive prediction of an alerting task (e.g. a pressure reading
    classified abnormal), about the entity the event's key names."""

    task: str | None = None
    key: str
    area: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    value: float | None = None
    score: float
    model_version: int
    reading_at: datetime | None = None

