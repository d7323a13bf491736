"""The three streams, each declared once: fields, bounds, features, tasks.

Every service reads these declarations; nothing else in the code base knows
which columns a stream has. A stream's *fields* are what arrives on its raw
topic; its *features* are what the normalizer emits and models consume (raw
fields and engineered ones); its *tasks* say what is learned from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class FieldType(StrEnum):
    FLOAT = "float"
    INT = "int"
    STR = "str"
    BOOL = "bool"
    DATETIME = "datetime"


class TaskKind(StrEnum):
    REGRESSION = "regression"
    CLASSIFICATION = "classification"
    CLUSTERING = "clustering"


class Algorithm(StrEnum):
    RANDOM_FOREST = "random_forest"
    XGBOOST = "xgboost"
    MLP = "mlp"
    KMEANS = "kmeans"
    XGB_CLASSIFIER = "xgb_classifier"


ALGORITHMS_BY_KIND: dict[TaskKind, tuple[Algorithm, ...]] = {
    TaskKind.REGRESSION: (Algorithm.RANDOM_FOREST, Algorithm.XGBOOST, Algorithm.MLP),
    TaskKind.CLASSIFICATION: (Algorithm.XGB_CLASSIFIER,),
    TaskKind.CLUSTERING: (Algorithm.KMEANS,),
}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: FieldType
    minimum: float | None = None
    maximum: float | None = None
    required: bool = True
    max_length: int = 128
    description: str = ""

    @property
    def numeric(self) -> bool:
        return self.type in (FieldType.FLOAT, FieldType.INT)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: TaskKind
    features: tuple[str, ...]
    default_algorithm: Algorithm
    target: str | None = None
    # Requests may omit these features; serving fills them with the training
    # mean recorded in the bundle, so the model still answers.
    optional_features: tuple[str, ...] = ()
    description: str = ""
    # Clustering: categories are numbered by this feature's centre value (raw
    # units, rising), so category numbers stay stable across retrains.
    # None: the first feature.
    order_by: str | None = None

    @property
    def algorithms(self) -> tuple[Algorithm, ...]:
        return ALGORITHMS_BY_KIND[self.kind]


@dataclass(frozen=True)
class StreamSpec:
    name: str
    key_field: str
    fields: tuple[FieldSpec, ...]
    features: tuple[str, ...]
    tasks: tuple[TaskSpec, ...]
    description: str = ""
    # Fields copied from the raw event onto features events untouched, for
    # alerts and dashboards (never fed to a model).
    context_fields: tuple[str, ...] = field(default=())

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(f"stream {self.name!r} has no field {name!r}")

    def task(self, name: str) -> TaskSpec:
        for spec in self.tasks:
            if spec.name == name:
                return spec
        known = ", ".join(t.name for t in self.tasks)
        raise KeyError(f"stream {self.name!r} has no task {name!r} (tasks: {known})")

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(t.target for t in self.tasks if t.target)


ENERGY = StreamSpec(
    name="energy",
    key_field="country",
    description="Country energy mix (Our World in Data columns).",
    fields=(
        FieldSpec("country", FieldType.STR, description="Country name; the message key."),
        FieldSpec("year", FieldType.INT, 1900, 2100, required=False),
        FieldSpec("renewables_share_energy", FieldType.FLOAT, 0, 100, description="Percent of primary energy."),
        FieldSpec("fossil_share_energy", FieldType.FLOAT, 0, 100, description="Percent of primary energy."),
        FieldSpec("nuclear_share_energy", FieldType.FLOAT, 0, 100, required=False),
        FieldSpec("carbon_intensity_elec", FieldType.FLOAT, 0, 2000, description="gCO2 per kWh of electricity."),
    ),
    features=("renewables_share_energy", "fossil_share_energy", "carbon_intensity_elec"),
    context_fields=("country", "year"),
    tasks=(
        TaskSpec(
            name="cluster",
            kind=TaskKind.CLUSTERING,
            features=("renewables_share_energy", "fossil_share_energy", "carbon_intensity_elec"),
            default_algorithm=Algorithm.KMEANS,
            order_by="carbon_intensity_elec",
            description="Energy-mix category; categories are numbered by rising carbon intensity.",
        ),
        TaskSpec(
            name="carbon",
            kind=TaskKind.REGRESSION,
            features=("renewables_share_energy", "fossil_share_energy"),
            optional_features=("fossil_share_energy",),
            target="carbon_intensity_elec",
            default_algorithm=Algorithm.RANDOM_FOREST,
            description="Carbon intensity of electricity from the energy shares.",
        ),
    ),
)

PRESSURE = StreamSpec(
    name="pressure",
    key_field="sensor_id",
    description="Water-network pressure sensors, in metres of water column (mca).",
    fields=(
        FieldSpec("sensor_id", FieldType.STR, description="Sensor id; the message key."),
        FieldSpec("timestamp", FieldType.DATETIME, description="Reading time (ISO 8601, UTC if naive)."),
        FieldSpec("pressure_mca", FieldType.FLOAT, 0, 200, description="Pressure in metres of water column."),
        FieldSpec("latitude", FieldType.FLOAT, -90, 90),
        FieldSpec("longitude", FieldType.FLOAT, -180, 180),
        FieldSpec("neighbourhood", FieldType.STR),
        FieldSpec("sensor_type", FieldType.STR, required=False),
        FieldSpec("anomaly", FieldType.BOOL, required=False, description="Label: injected or known anomaly."),
    ),
    features=("pressure_mca", "media_hora", "media_30d", "std_30d", "dif_media", "media_hora_relativa"),
    context_fields=("sensor_id", "timestamp", "latitude", "longitude", "neighbourhood", "sensor_type"),
    tasks=(
        TaskSpec(
            name="anomaly",
            kind=TaskKind.CLASSIFICATION,
            features=("pressure_mca", "media_hora", "media_30d", "std_30d", "dif_media", "media_hora_relativa"),
            target="anomaly",
            default_algorithm=Algorithm.XGB_CLASSIFIER,
            description="Normal (0) or abnormal (1) reading.",
        ),
    ),
)

PEOPLE = StreamSpec(
    name="people",
    key_field="person_id",
    description="Synthetic person records (Faker).",
    fields=(
        FieldSpec("person_id", FieldType.STR, description="Person id; the message key."),
        FieldSpec("name", FieldType.STR, required=False),
        FieldSpec("city", FieldType.STR, required=False),
        FieldSpec("age", FieldType.INT, 16, 100),
        FieldSpec("years_education", FieldType.INT, 0, 30),
        FieldSpec("hours_per_week", FieldType.FLOAT, 0, 100),
        FieldSpec("experience_years", FieldType.FLOAT, 0, 80),
        FieldSpec("income", FieldType.FLOAT, 0, 10_000_000, description="Yearly income; the regression target."),
    ),
    features=("age", "years_education", "hours_per_week", "experience_years", "income"),
    context_fields=("person_id",),
    tasks=(
        TaskSpec(
            name="income",
            kind=TaskKind.REGRESSION,
            features=("age", "years_education", "hours_per_week", "experience_years"),
            target="income",
            default_algorithm=Algorithm.RANDOM_FOREST,
            description="Yearly income from age, education, hours and experience.",
        ),
    ),
)

STREAMS: dict[str, StreamSpec] = {spec.name: spec for spec in (ENERGY, PRESSURE, PEOPLE)}


def get_stream(name: str) -> StreamSpec:
    try:
        return STREAMS[name]
    except KeyError:
        raise KeyError(f"unknown stream {name!r} (streams: {', '.join(STREAMS)})") from None
