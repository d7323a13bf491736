"""The generator's configuration (environment variables, no prefix)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import Field, model_validator

from shared.settings import ServiceSettings, StreamNames, serves
from shared.streams.declaration import STREAM_NAME


class GeneratorSettings(ServiceSettings):
    service_name: str = "generator"
    generator_streams: StreamNames = Field(
        (), description="Comma-separated streams to generate (default: every stream that declares a simulation)."
    )
    generator_rate: float = Field(50.0, ge=0, description="Events per second per stream; 0 = as fast as possible.")
    generator_count: int | None = Field(
        None, ge=0, description="Events per stream, then flush and exit 0 (default: run until stopped)."
    )
    generator_batch_size: int = Field(500, ge=1, le=100_000, description="Most events per send batch.")
    generator_seed: int = Field(42, description="Seed of every random choice (values, Faker pools).")
    generator_sensors: int = Field(20, ge=1, le=100_000, description="Pressure sensors (water_pressure).")
    generator_countries: int = Field(40, ge=3, le=200, description="Countries of the energy mix (energy_mix).")
    generator_households: int = Field(25, ge=1, le=100_000, description="Households (household_devices).")
    generator_anomaly_rate: float = Field(0.03, ge=0, lt=1, description="Fraction of anomalous pressure readings.")
    generator_invalid_rate: float = Field(0.0, ge=0, le=1, description="Fraction of deliberately invalid events.")
    generator_sim_start: datetime | None = Field(
        None, description="Simulated time of the first reading of stepped simulators (ISO 8601; default: start time)."
    )
    generator_sim_step: float = Field(
        300.0, gt=0, description="Simulated seconds between two readings of one sensor or household appliance."
    )
    generator_drift_at: float | None = Field(
        None, ge=0, description="Seconds after start when drift switches on (default: never; SIGUSR1 toggles it)."
    )
    generator_drift_streams: StreamNames = Field((), description="Streams that drift (default: all generated).")
    generator_drift_magnitude: float = Field(
        0.5, gt=-1, le=10, description="Relative shift while drifting: levels and targets scale by 1 + magnitude."
    )
    generator_replay_file: Path | None = Field(None, description="CSV file to replay instead of generating.")
    generator_replay_stream: str | None = Field(
        None, pattern=STREAM_NAME, description="Stream the replayed CSV rows belong to."
    )

    @model_validator(mode="after")
    def _replay_pair(self) -> GeneratorSettings:
        if (self.generator_replay_file is None) != (self.generator_replay_stream is None):
            raise ValueError("GENERATOR_REPLAY_FILE and GENERATOR_REPLAY_STREAM go together")
        if self.generator_replay_file is not None and not self.generator_replay_file.is_file():
            raise ValueError(f"GENERATOR_REPLAY_FILE {str(self.generator_replay_file)!r} is not a file")
        return self

    @property
    def drifting_streams(self) -> tuple[str, ...]:
        """The streams named to drift; empty means every generated one."""
        return self.generator_drift_streams or self.generator_streams

    def drifts(self, stream: str) -> bool:
        return serves(self.drifting_streams, stream)
