"""The normalizer's configuration (environment variables, no prefix)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import NonEmptyStreamNames, ServiceSettings
from shared.streams import STREAMS


class NormalizerSettings(ServiceSettings):
    service_name: str = "normalizer"
    normalizer_streams: NonEmptyStreamNames = Field(
        tuple(STREAMS), description="Comma-separated streams to normalize (default: all)."
    )
    normalizer_group: str = Field("", description="Kafka consumer group (default: <prefix>normalizer).")
    normalizer_max_sensors: int = Field(
        2000, ge=1, description="Pressure sensors whose windows are kept; the least recently seen is evicted."
    )
    normalizer_max_records: int = Field(2000, ge=1, le=100_000, description="Records per getmany batch.")
    scaler_publish_interval: float = Field(
        5.0, gt=0, description="Seconds between scaler snapshots (only streams whose scaler changed)."
    )

    @property
    def group(self) -> str:
        # Derived from the prefix so that deployments sharing a broker never
        # join each other's group.
        return self.normalizer_group or f"{self.topic_prefix}normalizer"
