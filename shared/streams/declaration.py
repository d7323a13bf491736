"""The stream declaration format: what a stream is, as data.

A declaration (YAML or JSON; format version 1) says what arrives on a
stream's raw topic and what is learned from it:

- ``fields``: the raw record's fields, with types (float, int, bool, str,
  datetime, category), bounds, closed or open category sets, and whether
  they are required;
- ``constants`` and ``tables``: named numbers and string-keyed number tables
  (an emission factor, a tariff per tariff band) for ``derived`` fields,
  which are arithmetic expressions over other columns (shared.expressions:
  never Python's eval);
- ``time_parts``: hour of day, day of week, month and weekend of a datetime
  field, as numeric columns named ``<field>_<part>``;
- ``rolling``: per-key statistics over time buckets (the mean of this hour,
  the 30-day mean and deviation of a sensor's readings);
- ``tasks``: what to learn (regression, classification, clustering), from
  which columns, with which algorithms, judged by which metric;
- ``simulation`` (optional): which of the generator's simulators produces
  synthetic records for the stream, and which field each of the simulator's
  outputs fills.

:func:`parse_declaration` turns a mapping into a :class:`StreamSpec` or
raises :class:`DeclarationInvalid` listing every problem with its JSON path
(``fields[2].type``), so an API can answer 422 naming each one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

FORMAT_VERSION = 1

# Bounds that keep one declaration from costing unbounded memory or time.
MAX_FIELDS = 200
MAX_CATEGORIES = 1000
MAX_TASKS = 20
MAX_DERIVED = 100
MAX_ROLLING = 50
MAX_BUCKETS = 10_000
MAX_EXAMPLES = 10

# Stream names end up in topic names (``raw.<name>``) and URLs: lower-case
# identifiers only, so no '.', '/', or anything a broker or a path treats specially.
STREAM_NAME = r"^[a-z][a-z0-9_]{0,47}$"
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"

StreamName = Annotated[str, Field(pattern=STREAM_NAME, description="Lower-case letters, digits and '_', starting with a letter.")]
Identifier = Annotated[str, Field(pattern=IDENTIFIER, description="A letter or '_', then letters, digits or '_'.")]

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _duration_seconds(value: Any) -> Any:
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"expected a duration such as '90s', '15m', '1h', '30d' or '2w', got {value[:40]!r}")
        return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return value


Duration = Annotated[int, BeforeValidator(_duration_seconds), Field(gt=0, description="Seconds, or '90s', '15m', '1h', '30d', '2w'.")]


class FieldType(StrEnum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    STR = "str"
    DATETIME = "datetime"
    CATEGORY = "category"


class TaskKind(StrEnum):
    REGRESSION = "regression"
    CLASSIFICATION = "classification"
    CLUSTERING = "clustering"


class Algorithm(StrEnum):
    RANDOM_FOREST = "random_forest"
    XGBOOST = "xgboost"
    MLP = "mlp"
    KMEANS = "kmeans"


ALGORITHMS_BY_KIND: dict[TaskKind, tuple[Algorithm, ...]] = {
    TaskKind.REGRESSION: (Algorithm.RANDOM_FOREST, Algorithm.XGBOOST, Algorithm.MLP),
    TaskKind.CLASSIFICATION: (Algorithm.XGBOOST, Algorithm.RANDOM_FOREST, Algorithm.MLP),
    TaskKind.CLUSTERING: (Algorithm.KMEANS,),
}

# Higher is better for every one of them; the champion gate compares on it.
METRICS_BY_KIND: dict[TaskKind, tuple[str, ...]] = {
    TaskKind.REGRESSION: ("r2", "neg_mae", "neg_rmse"),
    TaskKind.CLASSIFICATION: ("f1", "macro_f1", "accuracy"),
    TaskKind.CLUSTERING: ("silhouette",),
}


class TimePart(StrEnum):
    HOUR = "hour"
    DAY_OF_WEEK = "day_of_week"
    MONTH = "month"
    WEEKEND = "weekend"


class Statistic(StrEnum):
    MEAN = "mean"
    STD = "std"
    MIN = "min"
    MAX = "max"
    COUNT = "count"
    SUM = "sum"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class FieldSpec(_Strict):
    name: Identifier
    type: FieldType
    required: bool = Field(True, description="Whether a raw record must carry it; targets are usually optional.")
    minimum: float | None = Field(None, description="Numeric fields: smallest accepted value.")
    maximum: float | None = Field(None, description="Numeric fields: largest accepted value.")
    max_length: int = Field(128, ge=1, le=10_000, description="Text fields: longest accepted value.")
    categories: tuple[str, ...] | None = Field(
        None, description="Category fields: the known values (the choices of a form, the columns of a one-hot encoding)."
    )
    open: bool = Field(
        False, description="Category fields: accept values outside `categories` (a model encodes them as 'other')."
    )
    max_categories: int = Field(
        50, ge=1, le=MAX_CATEGORIES, description="Open category fields: most distinct values a model one-hot encodes."
    )
    unit: str = Field("", max_length=32)
    description: str = Field("", max_length=500)

    @property
    def numeric(self) -> bool:
        return self.type in (FieldType.FLOAT, FieldType.INT)

    @cached_property
    def category_set(self) -> frozenset[str]:
        return frozenset(self.categories or ())


class DerivedSpec(_Strict):
    name: Identifier
    expression: str = Field(max_length=1000, description="Arithmetic over columns, constants and tables (see shared.expressions).")
    unit: str = Field("", max_length=32)
    description: str = Field("", max_length=500)


class TimePartsSpec(_Strict):
    field: Identifier = Field(description="A datetime field.")
    parts: tuple[TimePart, ...] = Field(min_length=1)
    timezone: str = Field("UTC", max_length=64, description="IANA time zone the parts are taken in.")

    def column(self, part: TimePart) -> str:
        return f"{self.field}_{part.value}"


class RollingSpec(_Strict):
    name: Identifier
    value: Identifier = Field(description="The numeric field or derived field summarised.")
    stat: Statistic
    window: Duration = Field(description="How far back the statistic looks, a multiple of `bucket`.")
    bucket: Duration = Field(3600, description="Time bucket; a window of one bucket summarises the reading's own bucket.")
    key: Identifier | None = Field(None, description="Field grouping the statistic (default: the stream's key).")
    time: Identifier | None = Field(None, description="Datetime field placing a reading in time (default: the stream's only one).")
    description: str = Field("", max_length=500)


class EntityHistorySpec(_Strict):
    """An hourly history per entity, kept as the stream flows: per entity and
    hour the mean of ``value``, the latest ``deviation``, the alert state and
    the number of alerts, with the entity's kind, place and area."""

    value: Identifier = Field(description="The numeric column whose hourly mean is kept (e.g. the reading itself).")
    deviation: Identifier | None = Field(
        None, description="A numeric column kept as it stood at the hour's latest reading (e.g. a 30-day deviation)."
    )


class EntitySpec(_Strict):
    """Streams whose records come from things at a place (sensors, meters):
    the consumer keeps each thing's latest state and raises alerts about it."""

    latitude: Identifier | None = None
    longitude: Identifier | None = None
    area: Identifier | None = Field(None, description="A field naming the district or group (alert metrics are counted by it).")
    kind: Identifier | None = Field(None, description="A field naming the thing's type.")
    values: tuple[Identifier, ...] = Field((), description="Columns kept as the thing's latest state.")
    history: EntityHistorySpec | None = Field(
        None, description="Keep an hourly history per thing (GET /v1/streams/{name}/history, the data lake)."
    )


class ShadowPolicy(_Strict):
    promote: Literal["auto", "manual"] = Field(
        "auto", description="auto: the trainer promotes or retires the shadow once judged; manual: it only records "
        "the comparison and a person decides (POST /models/{id}/activate).",
    )
    min_labels: int = Field(200, ge=10, le=1_000_000, description="Labelled events both scored before the shadow is judged.")
    tolerance: float = Field(
        0.05, ge=0, le=1, description="The shadow is promoted if its live error is at most the champion's x (1 + tolerance)."
    )


class MonitorPolicy(_Strict):
    enabled: bool = True
    psi: float = Field(0.25, gt=0, description="Population stability index of a feature that triggers a retrain.")
    degradation: float = Field(
        2.0, gt=1, description="Rolling live error over the validation error that triggers a retrain."
    )
    min_events: int = Field(300, ge=50, description="Events scored (labelled, for degradation) before either is judged.")
    cooldown: Duration = Field(600, description="Least time between two retrains this policy triggers.")
    retrain_window: int = Field(
        2000, ge=20, description="Events scored after a threshold is first crossed before the retrain is asked for; "
        "the retrain learns from these newest events.",
    )


class TaskSpec(_Strict):
    name: Identifier
    kind: TaskKind
    target: Identifier | None = Field(None, description="Regression and classification: the column learned.")
    features: tuple[Identifier, ...] = Field(min_length=1, description="Input columns, in order.")
    optional_features: tuple[Identifier, ...] = Field(
        (), description="Inputs a request may leave out; the answer then comes from a model trained without them."
    )
    algorithms: tuple[Algorithm, ...] | None = Field(None, description="Allowed algorithms (default: every one of the kind).")
    default_algorithm: Algorithm | None = Field(None, description="Default: the first allowed one.")
    metric: str | None = Field(None, description="What the champion gate compares (higher is better); default per kind.")
    order_by: Identifier | None = Field(
        None, description="Clustering: categories are numbered by this feature's centre, rising (default: the first feature)."
    )
    positive_class: str | None = Field(None, description="Binary classification: the class that counts as positive.")
    alert: bool = Field(False, description="Classification: a positive prediction raises an alert.")
    examples: tuple[dict[str, Any], ...] = Field((), max_length=MAX_EXAMPLES, description="Example request records.")
    deploy: Literal["champion", "shadow"] = Field(
        "champion", description="A new model goes through the gate to champion, or in as shadow first."
    )
    refit: bool = Field(False, description="After validation, refit on every row (its metrics stay the validation's).")
    shadow: ShadowPolicy = ShadowPolicy()
    monitor: MonitorPolicy = MonitorPolicy()
    description: str = Field("", max_length=500)

    @property
    def allowed_algorithms(self) -> tuple[Algorithm, ...]:
        return self.algorithms or ALGORITHMS_BY_KIND[self.kind]

    @property
    def default(self) -> Algorithm:
        return self.default_algorithm or self.allowed_algorithms[0]

    @property
    def gate_metric(self) -> str:
        return self.metric or METRICS_BY_KIND[self.kind][0]

    @property
    def required_features(self) -> tuple[str, ...]:
        return tuple(name for name in self.features if name not in self.optional_features)


class SimulationSpec(_Strict):
    """A stream the generator can simulate. A simulator is a physical model
    with its own vocabulary of outputs ("roles": an energy mix's
    ``renewables``, a pressure sensor's ``level``); ``bind`` names the field
    each role fills, so the model never needs to know the stream's field
    names. An unbound role is left out of the records."""

    source: Identifier = Field(
        description="The simulator (the generator's: energy_mix, water_pressure, people, household_devices)."
    )
    bind: dict[Identifier, Identifier] = Field(min_length=1, description="Simulator role -> the field it fills.")


class StreamSpec(_Strict):
    format_version: Literal[1] = FORMAT_VERSION
    name: StreamName
    description: str = Field("", max_length=1000)
    key: Identifier | None = Field(None, description="Field whose value keys the messages (order holds per key); default: the event id.")
    fields: tuple[FieldSpec, ...] = Field(min_length=1)
    constants: dict[Identifier, float] = Field(default_factory=dict)
    tables: dict[Identifier, dict[str, float]] = Field(default_factory=dict)
    derived: tuple[DerivedSpec, ...] = ()
    time_parts: tuple[TimePartsSpec, ...] = ()
    rolling: tuple[RollingSpec, ...] = ()
    features: tuple[Identifier, ...] | None = Field(
        None, description="Numeric columns the online scaler standardises (default: every numeric task input)."
    )
    context: tuple[Identifier, ...] = Field((), description="Fields copied onto features events as they are.")
    entity: EntitySpec | None = None
    tasks: tuple[TaskSpec, ...] = ()
    simulation: SimulationSpec | None = None

    # -- lookups -----------------------------------------------------------

    def field(self, name: str) -> FieldSpec:
        spec = self._fields_by_name.get(name)
        if spec is None:
            raise KeyError(f"stream {self.name!r} has no field {name!r}")
        return spec

    def task(self, name: str) -> TaskSpec:
        for spec in self.tasks:
            if spec.name == name:
                return spec
        known = ", ".join(t.name for t in self.tasks)
        raise KeyError(f"stream {self.name!r} has no task {name!r} (tasks: {known})")

    @cached_property
    def _fields_by_name(self) -> dict[str, FieldSpec]:
        return {spec.name: spec for spec in self.fields}

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.fields)

    @cached_property
    def columns(self) -> dict[str, str]:
        """Every column a record has after normalization, name -> its kind:
        ``number`` (numeric fields, booleans, time parts, derived, rolling),
        ``category``, ``text`` or ``datetime``."""
        kinds: dict[str, str] = {}
        for spec in self.fields:
            if spec.numeric or spec.type is FieldType.BOOL:
                kinds[spec.name] = "number"
            elif spec.type is FieldType.CATEGORY:
                kinds[spec.name] = "category"
            elif spec.type is FieldType.DATETIME:
                kinds[spec.name] = "datetime"
            else:
                kinds[spec.name] = "text"
        for parts in self.time_parts:
            for part in parts.parts:
                kinds[parts.column(part)] = "number"
        for derived in self.derived:
            kinds[derived.name] = "number"
        for rolling in self.rolling:
            kinds[rolling.name] = "number"
        return kinds

    @cached_property
    def computed(self) -> tuple[str, ...]:
        """Numeric columns computed from others (time parts, derived, rolling)."""
        names = [parts.column(part) for parts in self.time_parts for part in parts.parts]
        names += [derived.name for derived in self.derived]
        names += [rolling.name for rolling in self.rolling]
        return tuple(names)

    @cached_property
    def scaled_features(self) -> tuple[str, ...]:
        """The numeric columns the normalizer's online scaler standardises."""
        if self.features is not None:
            return self.features
        names: dict[str, None] = {}
        for task in self.tasks:
            for name in task.features:
                if self.columns.get(name) == "number":
                    names[name] = None
        return tuple(names)

    @cached_property
    def targets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(task.target for task in self.tasks if task.target))

    @cached_property
    def time_field(self) -> str | None:
        """The stream's datetime field when it has exactly one."""
        times = [spec.name for spec in self.fields if spec.type is FieldType.DATETIME]
        return times[0] if len(times) == 1 else None

    def to_data(self) -> dict[str, Any]:
        """The declaration as plain JSON-able data, defaults left out."""
        return self.model_dump(mode="json", exclude_defaults=True)


class Problem(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    reason: str


class DeclarationInvalid(ValueError):
    """A declaration that cannot be registered; ``problems`` name each fault by its JSON path."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0] if problems else Problem(path="", reason="invalid")
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{first.path or 'declaration'}: {first.reason}{more}")


def json_path(location: tuple[Any, ...]) -> str:
    """('fields', 2, 'name') -> 'fields[2].name'."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def parse_declaration(data: Any) -> StreamSpec:
    """Validate ``data`` (a mapping, e.g. loaded from YAML or JSON) completely:
    its shape, then every cross-reference; raise :class:`DeclarationInvalid`."""
    if not isinstance(data, Mapping):
        raise DeclarationInvalid([Problem(path="", reason=f"expected an object, got {type(data).__name__}")])
    try:
        spec = StreamSpec.model_validate(dict(data))
    except ValidationError as error:
        raise DeclarationInvalid(
            [Problem(path=json_path(tuple(item["loc"])), reason=item["msg"]) for item in error.errors()]
        ) from None
    from shared.streams.checks import check_declaration  # the semantic checks need the expression language

    problems = check_declaration(spec)
    if problems:
        raise DeclarationInvalid(problems)
    return spec


def declaration_json_schema() -> dict[str, Any]:
    """The published JSON Schema of the declaration format."""
    schema = StreamSpec.model_json_schema(mode="validation")
    schema["$id"] = "https://fluxo.dev/schemas/stream-declaration-v1.json"
    schema["title"] = "Fluxo stream declaration (format version 1)"
    return schema
