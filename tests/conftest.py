"""Session-wide real infrastructure for the tests: a Kafka broker, PostgreSQL
and an S3-compatible object store.

Each server comes from the first source that works:
1. an address in the environment (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL,
   S3_ENDPOINT_URL with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY);
2. a container, when a Docker engine answers (Kafka and PostgreSQL only);
3. a local process started by shared.infra (no Docker needed).
When none works the fixture fails: tests never silently skip infrastructure.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from functools import cache
from pathlib import Path
from typing import TypeVar

import pytest

from shared.infra.s3 import S3Endpoint

# Fixtures on the live servers (a fresh database, topic prefix, bucket) for every test package.
pytest_plugins = ["tests.live"]

KAFKA_IMAGE = "apache/kafka:4.1.1"
POSTGRES_IMAGE = "postgres:16"

# What each fixture ended up using, printed at the end of the run.
_infrastructure: dict[str, str] = {}

T = TypeVar("T")


@cache
def _docker_available() -> bool:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    # Without an engine's socket there is nothing to ask, and the Docker SDK
    # would leak a socket (a ResourceWarning) while failing to connect.
    if host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists():
        return False
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no SDK, no socket, engine down: all mean "no Docker"
        return False


def _kafka_container(stack: ExitStack) -> str:
    """Start apache/kafka in a container and return its bootstrap address.

    testcontainers' KafkaContainer drives Confluent's image scripts and cannot
    start apache/kafka, so this configures the official image directly. The
    broker must advertise the address clients dial, so the host port is
    chosen up front and bound to the same number (this assumes the tests run
    where the Docker host's ports are reachable, testcontainers' usual mode).
    """
    from testcontainers.core.container import DockerContainer

    from shared.infra.kafka import probe_kafka
    from shared.infra.ports import free_port

    port = free_port()
    container = DockerContainer(KAFKA_IMAGE).with_bind_ports(9092, port)
    host = container.get_container_host_ip()
    settings = {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "PLAINTEXT://0.0.0.0:9092,CONTROLLER://localhost:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{host}:{port}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_NUM_PARTITIONS": "3",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "true",
    }
    for name, value in settings.items():
        container.with_env(name, value)
    stack.enter_context(container)
    bootstrap = f"{host}:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            probe_kafka(bootstrap)
            return bootstrap
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _start_kafka(stack: ExitStack) -> tuple[str, str]:
    """(bootstrap address, description of the broker)."""
    if _docker_available():
        bootstrap = _kafka_container(stack)
        return bootstrap, f"container {KAFKA_IMAGE} at {bootstrap}"
    from shared.infra.kafka import LocalKafka

    broker = stack.enter_context(LocalKafka())
    return broker.bootstrap, f"local Apache Kafka {broker.version} at {broker.bootstrap}"


def _start_postgres(stack: ExitStack) -> tuple[str, str]:
    """(DSN, description of the server)."""
    if _docker_available():
        try:
            from testcontainers.community.postgres import PostgresContainer
        except ImportError:  # testcontainers < 4.15
            from testcontainers.postgres import PostgresContainer

        container = stack.enter_context(PostgresContainer(POSTGRES_IMAGE, driver=None))
        dsn = container.get_connection_url()
        return dsn, f"container {POSTGRES_IMAGE} at {dsn.rsplit('@', 1)[-1]}"
    from shared.infra.postgres import LocalPostgres

    server = stack.enter_context(LocalPostgres())
    return server.dsn, f"local {server.version} at {server.dsn.rsplit('@', 1)[-1]}"


def _start_s3(stack: ExitStack) -> tuple[S3Endpoint, str]:
    """(endpoint and credentials, description of the server)."""
    from shared.infra.s3 import LocalS3

    server = stack.enter_context(LocalS3())
    return server.endpoint, f"local versitygw {server.version} at {server.endpoint.url}"


def _provide(
    kind: str,
    env_var: str,
    start: Callable[[ExitStack], tuple[T, str]],
    configured: Callable[[], T | None] | None = None,
) -> Iterator[T]:
    """Yield the server named in the environment (read by `configured`, by
    default the value of env_var), else one that `start` brings up."""
    read = configured or (lambda: os.environ.get(env_var))
    given: T | None | ValueError
    try:
        given = read()
    except ValueError as exc:
        given = exc
    if isinstance(given, ValueError):  # failing outside `except` keeps the report short
        pytest.fail(f"no {kind} for the tests: {given}", pytrace=False)
    if given:
        # Only the variable's name is reported: a DSN may carry a password.
        _infrastructure[kind] = f"from {env_var}"
        yield given
        return
    with ExitStack() as stack:
        began = time.monotonic()
        try:
            started: tuple[T, str] | Exception = start(stack)
        except Exception as exc:
            started = exc
        if isinstance(started, Exception):  # failing outside `except` keeps the report short
            pytest.fail(f"no {kind} for the tests: {started}", pytrace=False)
        address, description = started
        _infrastructure[kind] = f"{description} (ready in {time.monotonic() - began:.1f} s)"
        yield address


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address ("host:port") of a running Kafka broker."""
    yield from _provide("kafka", "KAFKA_BOOTSTRAP_SERVERS", _start_kafka)


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """postgresql:// DSN of a running PostgreSQL server."""
    yield from _provide("postgres", "DATABASE_URL", _start_postgres)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Endpoint]:
    """Address, credentials and region of a running S3-compatible server."""
    yield from _provide(
        "s3", "S3_ENDPOINT_URL", _start_s3, lambda: S3Endpoint.from_environment(os.environ)
    )


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[..., str]:
    """Factory for fresh topic/group names, e.g. unique_name("g") -> "g-test-x-1a2b3c4d".

    Fresh names keep tests independent on a shared broker without deleting
    anything. Only [a-zA-Z0-9-] is used: it is valid for topics and groups,
    and avoids Kafka's warning about names that mix '.' and '_'.
    """
    test = re.sub(r"[^a-zA-Z0-9-]+", "-", request.node.name).strip("-")[:80]

    def make(prefix: str = "t") -> str:
        return f"{prefix}-{test}-{uuid.uuid4().hex[:8]}"

    return make


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _infrastructure:
        return
    used = "; ".join(f"{kind}={description}" for kind, description in _infrastructure.items())
    terminalreporter.write_line(f"infrastructure: {used}")
