"""The normalizer's configuration (environment variables, no prefix)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from shared.settings import ServiceSettings
from shared.streams import STREAMS


class NormalizerSettings(ServiceSettings):
    service_name: str = "normalizer"
    normalizer_streams: Annotated[tuple[str, ...], NoDecode] = Field(
        tuple(STREAMS), description="Comma-separated streams to normalize (default: all)."
    )
    normalizer_group: str = Field("normalizer", min_length=1, description="Kafka consumer group.")
    normalizer_max_sensors: int = Field(
        2000, ge=1, description="Pressure sensors whose windows are kept; the least recently seen is evicted."
    )
    normalizer_max_records: int = Field(2000, ge=1, le=100_000, description="Records per getmany batch.")
    scaler_publish_interval: float = Field(
        5.0, gt=0, description="Seconds between scaler snapshots (only streams whose scaler changed)."
    )

    @field_validator("normalizer_streams", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("normalizer_streams")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one stream")
        unknown = [name for name in value if name not in STREAMS]
        if unknown:
            raise ValueError(f"unknown streams {unknown} (streams: {', '.join(STREAMS)})")
        return tuple(dict.fromkeys(value))
