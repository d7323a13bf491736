"""The gateway's configuration, read from the environment once at start-up."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from shared.settings import ServiceSettings

# The original energy API's routes, as stream/task of the built-in energy
# declaration; a deployment can point them at any registered task.
LEGACY_CLUSTER_TASK = "energy/cluster"
LEGACY_REGRESSION_TASK = "energy/carbon"


class GatewaySettings(ServiceSettings):
    service_name: str = Field("gateway", description="Name used in logs, metrics and client ids.")
    gateway_host: str = Field("127.0.0.1", description="Address the HTTP server listens on.")
    gateway_port: int = Field(8000, ge=0, le=65535, description="Port the HTTP server listens on.")
    fluxo_api_key: SecretStr | None = Field(
        None, description="When set, /upload, /train and model downloads need it in the X-API-Key header."
    )
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1, description="Largest accepted upload file (413 above).")
    max_upload_rows: int = Field(1_000_000, ge=1, description="Most data rows one upload may hold.")
    max_xlsx_uncompressed_bytes: int = Field(
        512 * 1024 * 1024, ge=1, description="Refuse an XLSX whose members inflate to more than this in total."
    )
    max_xlsx_ratio: float = Field(
        200.0, gt=1, description="Refuse an XLSX with a member compressed more than this many times."
    )
    max_reported_rejects: int = Field(1000, ge=0, description="Rejected rows listed one by one in an upload answer.")
    upload_chunk_rows: int = Field(5000, ge=1, description="Rows validated and published per step of an upload.")
    max_json_body_bytes: int = Field(
        2 * 1024 * 1024, ge=1024,
        description="Largest JSON (or other non-multipart) request body; refused with 413 before it is read whole.",
    )
    max_batch_rows: int = Field(1000, ge=1, description="Most records one /v1/streams/{stream}/predict call scores.")
    model_refresh_seconds: float = Field(
        30.0, gt=0, description="Registry re-read interval, a safety net beside the models topic."
    )
    ready_timeout_seconds: float = Field(2.0, gt=0, description="How long /ready waits on Kafka or PostgreSQL.")
    dependency_timeout_seconds: float = Field(
        5.0, gt=0, description="How long a request waits on Kafka or PostgreSQL before answering 503."
    )
    legacy_cluster_task: str = Field(
        LEGACY_CLUSTER_TASK, pattern=r"^[a-z][a-z0-9_]*/[A-Za-z_][A-Za-z0-9_]*$",
        description="stream/task that POST /predict answers for (a clustering task).",
    )
    legacy_regression_task: str = Field(
        LEGACY_REGRESSION_TASK, pattern=r"^[a-z][a-z0-9_]*/[A-Za-z_][A-Za-z0-9_]*$",
        description="stream/task that POST /regress answers for (a regression task).",
    )
    sensors_stream: str = Field("pressure", pattern=r"^[a-z][a-z0-9_]*$", description="The entity stream GET /sensors, /v1/sensors/history, /dados_geral and /dados_dia show.")
    max_events_per_call: int = Field(1000, ge=1, description="Most records one POST /v1/streams/{name}/events takes.")
    console_sample_seconds: float = Field(
        5.0, gt=0, le=300, description="Web console: how often topic and consumer-group offsets are sampled (rates, lag)."
    )
    console_recent_events: int = Field(
        2000, ge=10, le=100_000, description="Web console: features events kept per stream to show beside predictions."
    )
    console_backfill_events: int = Field(
        200, ge=0, le=100_000, description="Web console: events per partition read back when it starts following a stream."
    )
    console_map_tiles_url: str | None = Field(
        None, max_length=500, pattern=r"^https?://[^\s'\"<>]+\{z\}[^\s'\"<>]*$",
        description="Web console: a map tile server, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png "
        "(unset: sensors are drawn on a plain plot, and no request leaves the gateway's origin).",
    )

    @field_validator("fluxo_api_key", "console_map_tiles_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # FLUXO_API_KEY= (set but empty) means no key, not "the empty key"; likewise no tile server.
        return None if isinstance(value, str) and not value.strip() else value
