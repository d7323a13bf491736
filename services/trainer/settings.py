"""The trainer's configuration, from environment variables."""

from __future__ import annotations

from pydantic import Field

from shared.lake.destination import ObjectStoreSettings
from shared.settings import ServiceSettings, StreamNames, serves


# ObjectStoreSettings: the S3 store that training from the data lake reads.
class TrainerSettings(ServiceSettings, ObjectStoreSettings):
    service_name: str = "trainer"
    trainer_session_timeout_ms: int = Field(
        10_000, ge=6_000, le=300_000,
        description="Group session timeout: how long a replica that died (or was killed and restarted) holds its "
        "partitions before they move; heartbeats run beside the work, so a long batch does not expire it.",
    )
    train_streams: StreamNames = Field(
        (), description="Comma-separated streams this replica trains (default: every stream, those registered later too)."
    )
    train_window_size: int = Field(20_000, ge=100, le=1_000_000, description="Recent features events kept per stream.")
    train_interval: float = Field(60.0, ge=0, description="Seconds between scheduled retrains; 0 disables them.")
    train_min_rows: int = Field(500, ge=20, description="Usable rows a task needs before scheduled training.")
    train_command_min_rows: int = Field(20, ge=20, description="Usable rows a train command needs.")
    train_test_size: float = Field(0.2, gt=0, lt=0.9, description="Held-out fraction for scheduled runs.")
    train_seed: int = Field(42, description="Seed of splits and estimators.")
    train_shadow_check_seconds: float = Field(10.0, gt=0, description="Seconds between two judgements of the shadows.")
    train_gate_min_rows: int = Field(
        30, ge=1, description="Held-out labelled events neither model was trained on that the gate needs to decide."
    )
    train_not_worse_tolerance: float = Field(
        0.01, ge=0, le=1, description="A candidate replaces the active model unless its primary metric is lower by more than this."
    )
    train_group: str = Field("", description="Consumer group for the commands topic (default: <prefix>trainer-<streams>).")
    train_dataset_max_rows: int = Field(200_000, ge=100, description="Most rows a dataset_id command trains on.")
    train_dataset_scan_timeout: float = Field(120.0, gt=0, description="Seconds a dataset scan of a features topic may take.")
    train_dataset_wait_seconds: float = Field(
        60.0, ge=0, description="How long a dataset scan waits for the normalizer to have written every row the upload "
        "published (a train command right after an upload); past it the run trains on what it found and its "
        "training window says so (complete: false).",
    )


    def serves(self, stream: str) -> bool:
        return serves(self.train_streams, stream)

    @property
    def commands_group(self) -> str:
        # Replicas serving different streams must each see every command,
        # so the streams are part of the default group name.
        return self.train_group or f"{self.topic_prefix}trainer-{'-'.join(self.train_streams) or 'all'}"
