"""A throwaway single-node Apache Kafka broker (KRaft) run as a local JVM.

The broker jars come from Maven Central (deploy/kafka/pom.xml) because there
is no Docker engine and no release tarball on the development and CI
machines; see shared/KAFKA_LOCAL.md.
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import IO, NoReturn

from ._common import LocalServer, require_executables, run_coroutine, tail, wait_until_serving
from .ports import HOST, free_port

KAFKA_VERSION = "4.1.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
LOG_CONFIG = REPO_ROOT / "deploy" / "kafka" / "log4j2.yaml"

# Sized for a 2-core CI machine; a test broker needs little heap.
JVM_FLAGS = (
    "-Xms512m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
TOOLS_HINT = "install Java 17 and Maven, or set KAFKA_BOOTSTRAP_SERVERS"


def cache_root() -> Path:
    """Where downloaded broker jars live (outside the repo, shared by checkouts)."""
    configured = os.environ.get("FLUXO_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "fluxo"


def ensure_kafka_jars(version: str = KAFKA_VERSION) -> Path:
    """Return a directory holding the broker's jars, fetching them if needed.

    The version is passed to deploy/kafka/pom.xml; its logging dependencies
    (log4j2) fit Kafka 4.x.
    """
    libs = cache_root() / f"kafka-{version}" / "libs"
    if libs.is_dir() and any(libs.glob("*.jar")):
        return libs
    require_executables("java", "mvn", hint=TOOLS_HINT)
    libs.parent.mkdir(parents=True, exist_ok=True)
    # Download next to the final place and rename at the end: an interrupted
    # fetch then never leaves a half-filled libs dir that looks usable.
    staging = Path(tempfile.mkdtemp(prefix="libs-fetch-", dir=libs.parent))
    try:
        result = subprocess.run(
            [
                "mvn", "-B", "-q", "-f", str(POM),
                "org.apache.maven.plugins:maven-dependency-plugin:3.7.1:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
                f"-Dkafka.version={version}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr)[-4000:]
            raise RuntimeError(f"fetching Kafka {version} jars with Maven failed:\n{output}")
        if libs.is_dir() and not any(libs.iterdir()):
            libs.rmdir()
        try:
            staging.rename(libs)
        except OSError:
            # Another process finished the same fetch first; use its copy.
            if not any(libs.glob("*.jar")):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return libs


def new_cluster_id() -> str:
    """A KRaft cluster id: 22 characters of url-safe base64 of a random UUID."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # A leading '-' would be read as an option by StorageTool (Kafka's own
        # Uuid.randomUuid() skips those too).
        if not cluster_id.startswith("-"):
            return cluster_id


def server_properties(
    port: int,
    controller_port: int,
    log_dir: Path,
    *,
    node_id: int = 1,
    voters: dict[int, int] | None = None,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
) -> str:
    """Broker+controller settings for one KRaft node (see KAFKA_LOCAL.md).

    ``voters`` maps each controller's node id to its controller port (default:
    this node alone). The replication settings apply to every topic the
    cluster creates, its internal ones included.
    """
    voters = voters or {node_id: controller_port}
    quorum = ",".join(f"{voter}@{HOST}:{voter_port}" for voter, voter_port in sorted(voters.items()))
    return "\n".join(
        [
            "process.roles=broker,controller",
            f"node.id={node_id}",
            f"controller.quorum.voters={quorum}",
            f"listeners=PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
            f"advertised.listeners=PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={log_dir}",
            "num.partitions=3",
            f"default.replication.factor={replication_factor}",
            f"min.insync.replicas={min_insync_replicas}",
            f"offsets.topic.replication.factor={replication_factor}",
            f"transaction.state.log.replication.factor={replication_factor}",
            f"transaction.state.log.min.isr={min_insync_replicas}",
            f"share.coordinator.state.topic.replication.factor={replication_factor}",
            f"share.coordinator.state.topic.min.isr={min_insync_replicas}",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "",
        ]
    )


def java_command(libs: Path, jvm_flags: tuple[str, ...] = JVM_FLAGS) -> list[str]:
    """The JVM invocation (without a main class) every broker tool runs with."""
    return [
        "java",
        *jvm_flags,
        f"-Dlog4j2.configurationFile={LOG_CONFIG}",
        "-cp",
        f"{libs}/*",  # the JVM expands the wildcard itself, no shell involved
    ]


# Only the quick JIT compiler: a short-lived tool gains nothing from the
# optimising one, and on two cores skipping it saves about a second a run.
QUICK_JIT_FLAGS = ("-XX:TieredStopAtLevel=1",)


def format_command(libs: Path, cluster_id: str, config: Path) -> list[str]:
    """Formats a node's log directory for ``cluster_id`` (a no-op if done)."""
    return [
        *java_command(libs, JVM_FLAGS + QUICK_JIT_FLAGS),
        "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config), "--ignore-formatted",
    ]


async def _list_topics(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        await admin.list_topics()
    finally:
        await admin.close()


def probe_kafka(bootstrap: str) -> None:
    """Raise unless a broker at bootstrap answers a client metadata request.

    An open port is not enough: the broker listens before it can serve.
    """
    run_coroutine(_list_topics(bootstrap))


class LocalKafka(LocalServer):
    """A single-node Kafka broker in a temporary directory, on 127.0.0.1.

    Use as a context manager, or call start() and stop(). `bootstrap` is the
    address for clients once started.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        version: str = KAFKA_VERSION,
        startup_timeout: float = 90.0,
    ) -> None:
        self.version = version
        self.port = port
        self.startup_timeout = startup_timeout
        self.workdir: Path | None = None
        self.log_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        if self._process is None or self.port is None:
            raise RuntimeError("LocalKafka is not started")
        return f"{HOST}:{self.port}"

    def start(self) -> LocalKafka:
        if self._process is not None:
            return self
        libs = ensure_kafka_jars(self.version)
        atexit.register(self.stop)
        try:
            self._launch(libs)
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()  # lets the broker close its logs cleanly
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        atexit.unregister(self.stop)

    def _launch(self, libs: Path) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="fluxo-kafka-"))
        self.port = self.port or free_port()
        controller_port = free_port()
        while controller_port == self.port:
            controller_port = free_port()
        config = self.workdir / "server.properties"
        config.write_text(server_properties(self.port, controller_port, self.workdir / "data"))
        self.log_path = self.workdir / "broker.log"
        self._log_file = self.log_path.open("wb")

        formatted = subprocess.run(
            format_command(libs, new_cluster_id(), config),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=False,
        )
        if formatted.returncode != 0:
            self._fail(f"storage format failed with code {formatted.returncode}")
        # A new session keeps a terminal's Ctrl-C away from the broker, so the
        # owner decides when and how it stops.
        self._process = subprocess.Popen(
            [*java_command(libs), "kafka.Kafka", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_until_ready(self) -> None:
        assert self._process is not None and self.port is not None
        wait_until_serving(self._process, self.port, lambda: probe_kafka(self.bootstrap), self.startup_timeout, 0.2, self._fail)

    def _fail(self, reason: str) -> NoReturn:
        log = tail(self.log_path) if self.log_path else ""
        raise RuntimeError(f"Kafka {self.version} broker {reason}; broker log tail:\n{log}")
