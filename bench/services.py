"""Environments of the service processes a phase starts (the same variables
a deployment sets; see each services/<name>/settings.py)."""

from __future__ import annotations

from bench.context import Bench
from shared.infra.ports import free_port


def service_env(bench: Bench, prefix: str, dsn: str, name: str, **extra: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bench.kafka,
        "DATABASE_URL": dsn,
        "ARTIFACT_DIR": str(bench.artifact_dir),
        "TOPIC_PREFIX": prefix,
        "SERVICE_NAME": name,
        "METRICS_PORT": str(free_port()),
        "LOG_LEVEL": "INFO",
        "LOG_JSON": "true",
        **extra,
    }


def normalizer_env(bench: Bench, prefix: str, dsn: str) -> dict[str, str]:
    return service_env(bench, prefix, dsn, "normalizer", NORMALIZER_GROUP=f"{prefix}normalizer")


def consumer_env(bench: Bench, prefix: str, dsn: str, name: str = "consumer") -> dict[str, str]:
    # One group for every replica: they share the features partitions.
    return service_env(bench, prefix, dsn, name, CONSUMER_GROUP=f"{prefix}consumer")
