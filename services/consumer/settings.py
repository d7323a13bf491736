"""The consumer's configuration, from environment variables."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings, StreamNames, serves


class ConsumerSettings(ServiceSettings):
    service_name: str = "consumer"
    consumer_streams: StreamNames = Field(
        (), description="Comma-separated streams to score (default: every stream, those registered later too)."
    )
    consumer_group: str = Field("", description="Consumer group of the features topics (default: <prefix>consumer).")
    consumer_max_records: int = Field(2000, ge=1, le=100_000, description="Most events per scored batch.")
    consumer_error_window: int = Field(500, ge=1, description="Predictions with a known actual in the rolling error.")
    consumer_session_timeout_ms: int = Field(
        30_000, ge=6_000, le=300_000,
        description="Group session timeout: how soon the partitions of a replica that died move to the others.",
    )
    consumer_db_pool_size: int = Field(4, ge=1, le=50, description="PostgreSQL connections.")
    consumer_monitor_window: int = Field(
        1000, ge=50, le=100_000, description="Scored events (and labelled ones) drift and degradation look back on."
    )
    consumer_label_ttl_seconds: float = Field(
        3600.0, gt=0, description="How long a label for an event not scored yet waits before it is dead-lettered."
    )
    model_refresh_seconds: float = Field(
        30.0, gt=0, description="Registry re-read interval, a safety net beside the models topic."
    )
    history_retention_months: int = Field(
        13, ge=1, le=1200, description="Months of entity history kept; older month partitions are dropped."
    )
    history_retention_interval: float = Field(
        3600.0, gt=0, description="Seconds between two retention passes over the entity history."
    )

    def serves(self, stream: str) -> bool:
        return serves(self.consumer_streams, stream)

    @property
    def group(self) -> str:
        return self.consumer_group or f"{self.topic_prefix}consumer"
