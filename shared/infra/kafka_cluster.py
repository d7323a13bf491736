"""A throwaway multi-node Apache Kafka cluster (KRaft) run as local JVMs.

Deployments past one machine run Kafka as three brokers with replication 3
and min.insync.replicas=2; this runs that shape on one machine from the same
Maven Central jars as LocalKafka, so it can be tried and broken on purpose:
any node can be killed (SIGKILL) and started again on its data and ports.

Every node is broker and controller at once and the nodes form a static
quorum of as many voters. Three nodes survive the loss of one: the other two
still hold the controller majority and, with min.insync.replicas=2, still
accept acks=all writes. Separate controllers (three more JVMs) were measured
on the 2-core machine (other jobs kept its load at 11-19): they took 94-118 s
to start against 35-44 s for three combined nodes, while failover after a
broker's SIGKILL (6-7 s against 6-9 s) and restart (10-15 s against 13-19 s)
were alike, so combined nodes it is.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn

from ._common import LocalServer, run_coroutine, tail
from .kafka import (
    JVM_FLAGS,
    KAFKA_VERSION,
    QUICK_JIT_FLAGS,
    ensure_kafka_jars,
    format_command,
    java_command,
    new_cluster_id,
    server_properties,
)
from .ports import HOST, free_port, port_open

# Three JVMs share a 2-core machine: a smaller heap each than the single
# broker's, and only the quick JIT compiler. Starting three nodes with the
# optimising compiler took 29-30 s against 21-23 s without it (load ~11).
NODE_HEAP = "384m"
NODE_JVM_FLAGS = (
    f"-Xms{NODE_HEAP}",
    f"-Xmx{NODE_HEAP}",
    *(flag for flag in JVM_FLAGS if not flag.startswith("-Xm")),
    *QUICK_JIT_FLAGS,
)

# The controller fences a broker that missed heartbeats for this long and
# moves its partition leaderships; Kafka's default is 9 s. A SIGKILLed broker
# sends no goodbye, so this is how long its partitions have no leader.
BROKER_SESSION_TIMEOUT_MS = 6000
BROKER_HEARTBEAT_INTERVAL_MS = 1000


def cluster_tuning() -> str:
    return "\n".join(
        [
            f"broker.session.timeout.ms={BROKER_SESSION_TIMEOUT_MS}",
            f"broker.heartbeat.interval.ms={BROKER_HEARTBEAT_INTERVAL_MS}",
            # Never elect a replica that may lack acknowledged writes.
            "unclean.leader.election.enable=false",
            "",
        ]
    )


@dataclass
class _Node:
    node_id: int
    port: int
    controller_port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def config(self) -> Path:
        return self.workdir / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.workdir / "broker.log"

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def in_sync_everywhere(node_id: int, topics: list[dict[str, Any]]) -> bool:
    """Whether ``node_id`` is in the ISR of every partition it replicates,
    given topics as aiokafka's metadata describes them."""
    return all(
        node_id in partition["isr"]
        for topic in topics
        for partition in topic["partitions"]
        if node_id in partition["replicas"]
    )


class LocalKafkaCluster(LocalServer):
    """``brokers`` KRaft nodes on 127.0.0.1 in one temporary directory.

    Use as a context manager, or call start() and stop(). ``bootstrap`` lists
    every node. kill(node_id) and start(node_id) stop and restart one node;
    leader_of(), isr_of() and wait_in_sync() read the cluster's metadata.
    ``ports`` fixes the client ports (one per node); default: free ones.
    """

    def __init__(
        self,
        brokers: int = 3,
        *,
        ports: Sequence[int] | None = None,
        version: str = KAFKA_VERSION,
        startup_timeout: float = 120.0,
    ) -> None:
        if brokers < 1:
            raise ValueError("a cluster needs at least one broker")
        if ports is not None and len(ports) != brokers:
            raise ValueError(f"{brokers} brokers need {brokers} ports, got {len(ports)}")
        self.brokers = brokers
        self.replication_factor = min(3, brokers)
        # One replica may be down and writes still go on.
        self.min_insync_replicas = max(1, self.replication_factor - 1)
        self.version = version
        self.startup_timeout = startup_timeout
        self.workdir: Path | None = None
        self._ports = list(ports) if ports is not None else None
        self._nodes: dict[int, _Node] = {}
        self._libs: Path | None = None

    @property
    def node_ids(self) -> list[int]:
        return sorted(self._nodes)

    @property
    def bootstrap(self) -> str:
        if not self._nodes:
            raise RuntimeError("LocalKafkaCluster is not started")
        return ",".join(node.address for node in self._nodes.values())

    def start(self, node_id: int | None = None) -> LocalKafkaCluster:
        """Start the whole cluster, or (given ``node_id``) start that node
        again on its data directory and ports; returns once it serves."""
        if node_id is not None:
            node = self._node(node_id)
            if not node.running():
                self._spawn(node)
                self._wait_until_ready([node])
            return self
        if self._nodes:
            return self
        self._libs = ensure_kafka_jars(self.version)
        atexit.register(self.stop)
        try:
            self._create_nodes()
            for node in self._nodes.values():
                self._spawn(node)
            self._wait_until_ready(list(self._nodes.values()))
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self, node_id: int, timeout: float = 10.0) -> None:
        """SIGKILL one node (no controlled shutdown) and wait until it is gone."""
        node = self._node(node_id)
        if node.process is not None and node.process.poll() is None:
            node.process.kill()
            node.process.wait(timeout=timeout)
        self._close_log(node)

    def stop(self) -> None:
        nodes, self._nodes = list(self._nodes.values()), {}
        # SIGTERM to all first, so that their shutdowns overlap.
        for node in nodes:
            if node.running():
                assert node.process is not None
                node.process.terminate()
        deadline = time.monotonic() + 20
        for node in nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(timeout=10)
            self._close_log(node)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        atexit.unregister(self.stop)

    # Metadata, as clients see it. Each call has its own deadline.

    def describe(self, topics: list[str] | None = None, timeout: float = 15.0) -> dict[str, Any]:
        """{"brokers": live (unfenced) broker ids, "topics": aiokafka's topic
        metadata (partitions with leader, replicas, isr)} for ``topics`` (all
        when None)."""
        return run_coroutine(_describe(self.bootstrap, topics, timeout))

    def leader_of(self, topic: str, partition: int, timeout: float = 15.0) -> int:
        """The node leading ``topic``/``partition`` (-1 while it has none)."""
        return self._partition(topic, partition, timeout)["leader"]

    def isr_of(self, topic: str, partition: int, timeout: float = 15.0) -> list[int]:
        return sorted(self._partition(topic, partition, timeout)["isr"])

    def wait_in_sync(self, node_id: int, timeout: float = 60.0) -> float:
        """Wait until ``node_id`` is a live broker and back in the ISR of every
        partition it replicates (internal topics included); returns the
        seconds waited."""
        began = time.monotonic()
        deadline = began + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                state = self.describe(timeout=max(deadline - time.monotonic(), 1.0))
                if node_id in state["brokers"] and in_sync_everywhere(node_id, state["topics"]):
                    return time.monotonic() - began
                last = f"live brokers {sorted(state['brokers'])}"
            except Exception as exc:  # the cluster is mid-failover: ask again
                last = exc
            time.sleep(0.25)
        raise TimeoutError(f"node {node_id} not back in sync after {timeout:.0f} s (last: {last!r})")

    # Internals.

    def _node(self, node_id: int) -> _Node:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise KeyError(f"no node {node_id} (nodes: {self.node_ids})") from None

    def _partition(self, topic: str, partition: int, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.describe([topic], max(deadline - time.monotonic(), 1.0))
            for described in state["topics"]:
                for found in described["partitions"]:
                    if found["partition"] == partition:
                        return found
            # Mid-failover a broker may answer with a topic error and no
            # partitions (LEADER_NOT_AVAILABLE): ask again.
            if time.monotonic() >= deadline:
                raise KeyError(f"{topic}/{partition} is not in the cluster's metadata: {state['topics']}")
            time.sleep(0.2)

    def _create_nodes(self) -> None:
        assert self._libs is not None
        self.workdir = Path(tempfile.mkdtemp(prefix="fluxo-kafka-cluster-"))
        taken: set[int] = set(self._ports or ())
        ports = self._ports or [_fresh_port(taken) for _ in range(self.brokers)]
        controller_ports = [_fresh_port(taken) for _ in range(self.brokers)]
        voters = {node_id: controller_ports[node_id - 1] for node_id in range(1, self.brokers + 1)}
        cluster_id = new_cluster_id()
        formatting: list[tuple[_Node, subprocess.Popen[bytes]]] = []
        for node_id in voters:
            node = _Node(node_id, ports[node_id - 1], voters[node_id], self.workdir / f"node-{node_id}")
            node.workdir.mkdir()
            node.config.write_text(
                server_properties(
                    node.port,
                    node.controller_port,
                    node.workdir / "data",
                    node_id=node_id,
                    voters=voters,
                    replication_factor=self.replication_factor,
                    min_insync_replicas=self.min_insync_replicas,
                )
                + cluster_tuning()
            )
            self._nodes[node_id] = node
            node.log_file = node.log_path.open("ab")
            # All nodes at once: each format is a JVM start of a few seconds.
            formatting.append((node, subprocess.Popen(
                format_command(self._libs, cluster_id, node.config),
                stdin=subprocess.DEVNULL, stdout=node.log_file, stderr=subprocess.STDOUT,
            )))
        deadline = time.monotonic() + 120
        try:
            for node, process in formatting:
                code = process.wait(timeout=max(deadline - time.monotonic(), 0.1))
                if code != 0:
                    self._fail(node, f"storage format failed with code {code}")
        finally:
            for node, process in formatting:
                if process.poll() is None:
                    process.kill()
                    process.wait()
                self._close_log(node)

    def _spawn(self, node: _Node) -> None:
        assert self._libs is not None
        self._close_log(node)
        # Appending keeps the log of an earlier run of the node (a kill) readable.
        node.log_file = node.log_path.open("ab")
        # A new session keeps a terminal's Ctrl-C away from the nodes.
        node.process = subprocess.Popen(
            [*java_command(self._libs, NODE_JVM_FLAGS), "kafka.Kafka", str(node.config)],
            stdin=subprocess.DEVNULL,
            stdout=node.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_until_ready(self, nodes: list[_Node]) -> None:
        """Each node listens and is a live broker in its own metadata: the
        quorum has a leader and has unfenced it."""
        deadline = time.monotonic() + self.startup_timeout
        waiting = list(nodes)
        last_error: object = None
        while waiting:
            node = waiting[0]
            assert node.process is not None
            if node.process.poll() is not None:
                self._fail(node, f"exited with code {node.process.returncode}")
            if port_open(node.port):
                try:
                    brokers = run_coroutine(_describe(node.address, [], 5.0))["brokers"]
                    if node.node_id in brokers:
                        waiting.pop(0)
                        continue
                    last_error = f"live brokers {sorted(brokers)}"
                except Exception as exc:  # not serving yet: keep polling
                    last_error = exc
            if time.monotonic() >= deadline:
                self._fail(node, f"not ready after {self.startup_timeout:.0f} s (last: {last_error!r})")
            time.sleep(0.2)

    def _close_log(self, node: _Node) -> None:
        if node.log_file is not None:
            node.log_file.close()
            node.log_file = None

    def _fail(self, node: _Node, reason: str) -> NoReturn:
        raise RuntimeError(
            f"Kafka {self.version} cluster node {node.node_id} {reason}; its log tail:\n{tail(node.log_path)}"
        )


def _fresh_port(taken: set[int]) -> int:
    port = free_port()
    while port in taken:
        port = free_port()
    taken.add(port)
    return port


async def _describe(bootstrap: str, topics: list[str] | None, timeout: float) -> dict[str, Any]:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    request_timeout_ms = max(int(timeout * 1000), 1000)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=request_timeout_ms)
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            while True:
                try:
                    cluster = await admin.describe_cluster()
                    described = await admin.describe_topics(topics) if topics != [] else []
                    break
                except (KafkaError, OSError):
                    # aiokafka's admin asks a random broker of its last metadata,
                    # which lists a killed broker until the controller fences it.
                    await asyncio.sleep(0.2)
    finally:
        await admin.close()
    return {"brokers": {broker["node_id"] for broker in cluster["brokers"]}, "topics": described}
