"""Configuration from the environment, validated once at start-up.

Each service subclasses :class:`ServiceSettings`, builds it once in its
entrypoint with :func:`load_settings` and passes the frozen object down.
A bad value stops the process before it touches Kafka or PostgreSQL, with a
message that names the environment variable at fault.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.streams.declaration import STREAM_NAME

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class ServiceSettings(BaseSettings):
    """What every Fluxo process needs; variables are read without a prefix."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_prefix="")

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Comma-separated host:port list of Kafka brokers."
    )
    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/postgres",
        description="PostgreSQL DSN (postgresql://user:password@host:port/db).",
    )
    artifact_dir: Path = Field(Path("./artifacts"), description="Where model bundles live.")
    topic_prefix: str = Field(
        "", description="Prefix for every topic name, so several deployments or tests share a broker."
    )
    topic_replication_factor: int = Field(
        1, ge=1, description="Replicas of each topic a service creates (3 on a three-broker cluster)."
    )
    topic_min_insync_replicas: int = Field(
        1, ge=1, description="min.insync.replicas of each topic a service creates (2 on a three-broker cluster)."
    )
    service_name: str = Field("fluxo", description="Name used in logs, metrics and client ids.")
    metrics_port: int = Field(0, ge=0, le=65535, description="Port of /metrics; 0 disables it.")
    metrics_host: str = Field("127.0.0.1", description="Address /metrics listens on.")
    log_level: LogLevel = "INFO"
    log_json: bool = Field(True, description="JSON log lines (false: human-readable console).")

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return value

    @field_validator("topic_min_insync_replicas")
    @classmethod
    def _check_insync(cls, value: int, info: ValidationInfo) -> int:
        # More in-sync replicas than replicas would refuse every acks=all write.
        replicas = info.data.get("topic_replication_factor")
        if replicas is not None and value > replicas:
            raise ValueError(f"cannot exceed TOPIC_REPLICATION_FACTOR ({replicas})")
        return value

    @property
    def topic_replication(self) -> dict[str, int]:
        """The replication keywords of shared.kafka.admin.ensure_topics."""
        return {
            "replication_factor": self.topic_replication_factor,
            "min_insync_replicas": self.topic_min_insync_replicas,
        }

    @field_validator("database_url")
    @classmethod
    def _check_dsn(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql:// or postgres://")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class SettingsError(SystemExit):
    """Raised when the environment is invalid: the process exits with the
    message (which names each bad variable) instead of a traceback."""


S = TypeVar("S", bound=ServiceSettings)


def describe_errors(cls: type[ServiceSettings], error: ValidationError) -> str:
    lines = [f"invalid configuration for {cls.__name__}:"]
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "?"
        lines.append(f"  {field.upper()}={item.get('input')!r}: {item['msg']}")
    return "\n".join(lines)


def load_settings(cls: type[S], **overrides: object) -> S:
    """Build settings from the environment, or exit with a readable message."""
    try:
        return cls(**overrides)
    except ValidationError as error:
        raise SettingsError(describe_errors(cls, error)) from error


def _split_streams(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _stream_names(value: tuple[str, ...]) -> tuple[str, ...]:
    bad = [name for name in value if not re.match(STREAM_NAME, name)]
    if bad:
        raise ValueError(f"not stream names: {bad} (lower-case letters, digits and '_')")
    return tuple(dict.fromkeys(value))


# A comma-separated list of stream names in one environment variable
# (``energy,pressure``): split, checked, de-duplicated. Streams are declared
# while Fluxo runs, so a name is not checked against the declarations here;
# an empty list means every stream, including those registered later.
StreamNames = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split_streams), AfterValidator(_stream_names)]


def serves(selected: tuple[str, ...], stream: str) -> bool:
    """Whether a service configured with ``selected`` streams works on ``stream``."""
    return not selected or stream in selected
