"""The normalizer's configuration (environment variables, no prefix)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings, StreamNames, serves


class NormalizerSettings(ServiceSettings):
    service_name: str = "normalizer"
    normalizer_streams: StreamNames = Field(
        (), description="Comma-separated streams to normalize (default: every stream, those registered later too)."
    )
    normalizer_group: str = Field("", description="Kafka consumer group (default: <prefix>normalizer).")
    normalizer_max_keys: int = Field(
        2000, ge=1, description="Keys (sensors, households...) whose rolling windows are kept per group; the least recently seen is evicted."
    )
    normalizer_session_timeout_ms: int = Field(
        10_000, ge=6_000, le=300_000,
        description="Group session timeout: how long a replica that died (or was killed and restarted) holds its "
        "partitions before they move; heartbeats run beside the work, so a long batch does not expire it.",
    )
    normalizer_max_records: int = Field(2000, ge=1, le=100_000, description="Records per getmany batch.")
    scaler_publish_interval: float = Field(
        5.0, gt=0,
        description="Seconds between checkpoints of the state (scaler snapshots and the rolling windows of the "
        "keys updated since; only streams whose committed offsets moved). A restart replays the raw records "
        "since the last one.",
    )
    normalizer_replay_max_records: int = Field(
        200_000, ge=0,
        description="Most raw records a restore replays into the restored state; past it the windows resume "
        "from the checkpoint without the records in between (logged, counted).",
    )
    normalizer_restore_timeout_seconds: float = Field(
        120.0, gt=0, description="Deadline for reading the checkpoint and replaying at each partition assignment."
    )

    @property
    def group(self) -> str:
        # Derived from the prefix so that deployments sharing a broker never
        # join each other's group.
        return self.normalizer_group or f"{self.topic_prefix}normalizer"

    def serves(self, stream: str) -> bool:
        return serves(self.normalizer_streams, stream)
