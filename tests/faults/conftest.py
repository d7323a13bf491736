"""A three-broker KRaft cluster for the fault tests, and a place for their figures.

The cluster always comes from shared.infra (never from KAFKA_BOOTSTRAP_SERVERS
or a container): the tests kill and restart its brokers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from shared.infra.kafka_cluster import LocalKafkaCluster

# Lines the fault tests report, printed at the end of the run (no -s needed).
FIGURES: list[str] = []


@pytest.fixture(scope="module")
def kafka_cluster() -> Iterator[LocalKafkaCluster]:
    began = time.monotonic()
    cluster = LocalKafkaCluster(3)
    try:
        cluster.start()
    except Exception as exc:  # noqa: BLE001 - reported as the fixture's failure
        failure = str(exc)
    else:
        failure = ""
    if failure:  # failing outside `except` keeps the report short
        pytest.fail(f"no Kafka cluster for the fault tests: {failure}", pytrace=False)
    FIGURES.append(
        f"kafka cluster: {cluster.brokers} KRaft nodes (Apache Kafka {cluster.version}) "
        f"ready in {time.monotonic() - began:.1f} s"
    )
    try:
        yield cluster
    finally:
        cluster.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in FIGURES:
        terminalreporter.write_line(line)
