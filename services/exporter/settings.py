"""The exporter's configuration, from environment variables."""

from __future__ import annotations

from pydantic import Field, field_validator

from shared.lake.addresses import DestinationError, parse_destination
from shared.lake.destination import ObjectStoreSettings
from shared.settings import ServiceSettings, StreamNames, serves


class ExporterSettings(ServiceSettings, ObjectStoreSettings):
    service_name: str = "exporter"
    export_destination: str = Field(
        "./lake", description="Where files go: a local directory, or s3://bucket/prefix (see S3_ENDPOINT_URL)."
    )
    export_interval: float = Field(
        3600.0, ge=0, description="Seconds between scheduled exports (the first at start); 0: only on demand."
    )
    export_streams: StreamNames = Field(
        (), description="Comma-separated streams scheduled exports cover (default: every stream)."
    )
    export_poll_seconds: float = Field(1.0, gt=0, le=60, description="How often queued exports are looked for.")
    export_segment_max_rows: int = Field(
        100_000, ge=100, le=10_000_000, description="Most source rows one segment (and so one file) holds."
    )
    export_history_lag_hours: int = Field(
        1, ge=1, le=48,
        description="An hour of history is exported once this many later hours have begun (by its readings or the clock).",
    )
    export_kafka_timeout: float = Field(120.0, gt=0, description="Seconds reading one segment from Kafka may take.")
    export_database_timeout: float = Field(60.0, gt=0, description="Seconds one PostgreSQL statement may take.")
    export_commit_delay_seconds: float = Field(
        0.0, ge=0, le=60,
        description="Pause between writing a file's temporary copy and committing it (tests kill an export there).",
    )

    @field_validator("export_destination")
    @classmethod
    def _check_destination(cls, value: str) -> str:
        try:
            parse_destination(value)
        except DestinationError as error:
            raise ValueError(str(error)) from None
        return value

    def exports(self, stream: str) -> bool:
        return serves(self.export_streams, stream)
