"""`make run`: Fluxo on this machine without Docker, until Ctrl-C.

    python -m deploy.local [--gateway-port 8000] [--rate 20] [--no-prometheus] ...

Starts a throwaway Kafka broker and PostgreSQL (shared.infra), creates the
topics and applies the migrations, then runs the Procfile's six services as
processes with their output prefixed by name, plus Prometheus when its binary
is installed (Debian package ``prometheus``). Prints the URLs to open. Ctrl-C
or SIGTERM stops the services first, then Kafka and PostgreSQL. A service
that dies is started again after a back-off, as compose's restart policy does.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from deploy.plan import (
    DEFAULT_METRICS_BASE_PORT,
    GATEWAY,
    REPO_ROOT,
    ServicePlan,
    StackOptions,
    pick_ports,
    plan_services,
    read_procfile,
    urls,
)
from deploy.prometheus_local import find_prometheus, prometheus_argv, write_localhost_config
from deploy.supervisor import Supervisor
from deploy.topics import init_topics
from shared.infra._common import run_coroutine
from shared.infra.ports import free_port, port_open

PROMETHEUS = "prometheus"
MAX_RESTART_DELAY = 30.0


@dataclass
class RunningStack:
    plans: list[ServicePlan]
    supervisor: Supervisor
    prometheus_url: str | None = None
    workdir: Path | None = None
    restart_at: dict[str, float] = field(default_factory=dict)

    def urls(self) -> list[tuple[str, str]]:
        return urls(self.plans, self.prometheus_url)

    @property
    def services(self) -> list[str]:
        return [plan.name for plan in self.plans]

    def watch(self) -> list[str]:
        """Restart services that died, with a growing back-off; returns the
        names that ended since the last call."""
        ended = []
        now = time.monotonic()
        for name, code in self.supervisor.exited().items():
            if name not in self.services:
                continue
            if name not in self.restart_at:
                restarts = self.supervisor.restarts().get(name, 0)
                delay = min(2.0**restarts, MAX_RESTART_DELAY)
                self.supervisor.say(f"{name} exited with code {code}; restarting in {delay:g} s")
                self.restart_at[name] = now + delay
                ended.append(name)
            elif now >= self.restart_at[name]:
                del self.restart_at[name]
                self.supervisor.restart(name)
        return ended


async def prepare_backends(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, partitions: int
) -> list[str]:
    """Create the topics and apply the migrations before any service starts,
    so services do not race each other for either."""
    from shared.db import apply_migrations, create_pool

    created = await init_topics(kafka_bootstrap, topic_prefix, partitions=partitions)
    pool = await create_pool(database_url)
    try:
        await apply_migrations(pool)
    finally:
        await pool.close()
    return created


def service_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the services inherit: this one, without the variables
    a service would otherwise pick up from the caller's shell by accident."""
    env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED}
    env.update(extra or {})
    return env


# Services read settings from the environment without a prefix; a stray
# METRICS_PORT or TOPIC_PREFIX in the caller's shell must not leak in.
_SCRUBBED = frozenset(
    {
        "KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "ARTIFACT_DIR", "TOPIC_PREFIX", "SERVICE_NAME",
        "METRICS_PORT", "METRICS_HOST", "LOG_LEVEL", "LOG_JSON", "GATEWAY_HOST", "GATEWAY_PORT", "EXPORT_DESTINATION",
    }
)


@contextmanager
def running_stack(
    options: StackOptions,
    supervisor: Supervisor,
    *,
    prometheus: bool | None = None,
    prometheus_port: int = 9090,
    scrape_interval: str | None = None,
    topic_partitions: int = 6,
) -> Iterator[RunningStack]:
    """Start the services (and Prometheus) against running Kafka and PostgreSQL.

    ``prometheus``: True requires the binary, None uses it when installed,
    False leaves it out. Everything started here is stopped on exit.
    """
    created = run_coroutine(
        prepare_backends(options.kafka_bootstrap, options.database_url, options.topic_prefix, topic_partitions)
    )
    supervisor.say(f"topics ready ({len(created)} created), migrations applied")
    workdir = Path(tempfile.mkdtemp(prefix="fluxo-run-"))
    if options.lake_dir is None:
        options = dataclasses.replace(options, lake_dir=workdir / "lake")
    plans = plan_services(options, read_procfile(), service_env())
    stack = RunningStack(plans, supervisor, workdir=workdir)
    try:
        for plan in plans:
            supervisor.start(plan.name, plan.argv, plan.env, cwd=REPO_ROOT)
        binary = find_prometheus() if prometheus is not False else None
        if prometheus and binary is None:
            raise RuntimeError("prometheus not found on PATH: apt-get install prometheus")
        if binary is not None:
            stack.prometheus_url = _start_prometheus(
                supervisor, binary, plans, workdir, prometheus_port, scrape_interval
            )
        elif prometheus is None:
            supervisor.say("no prometheus binary on PATH (apt-get install prometheus): running without it")
        yield stack
    finally:
        # Services first (they flush and commit), Prometheus with them; the
        # caller stops Kafka and PostgreSQL afterwards.
        supervisor.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _start_prometheus(
    supervisor: Supervisor,
    binary: str,
    plans: list[ServicePlan],
    workdir: Path,
    port: int,
    scrape_interval: str | None,
) -> str:
    if not port or port_open(port):
        port = free_port()
    address = f"127.0.0.1:{port}"
    config = write_localhost_config(
        workdir, {plan.name: plan.target for plan in plans}, address, scrape_interval
    )
    storage = workdir / "prometheus-data"
    storage.mkdir()
    supervisor.start(PROMETHEUS, prometheus_argv(binary, config, storage, address), service_env(), cwd=workdir)
    return f"http://{address}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m deploy.local", description=__doc__.split("\n")[0])
    parser.add_argument("--gateway-host", default="127.0.0.1", help="address the gateway listens on")
    parser.add_argument("--gateway-port", type=int, default=8000, help="gateway port (default 8000)")
    parser.add_argument(
        "--metrics-port-base", type=int, default=DEFAULT_METRICS_BASE_PORT,
        help="first /metrics port of the workers, one each from there (0: free ports)",
    )
    parser.add_argument("--rate", type=float, default=20.0, help="generator events per second per stream")
    parser.add_argument("--topic-prefix", default="", help="prefix of every topic name")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of each per-stream topic")
    parser.add_argument("--artifact-dir", type=Path, help="where model bundles go (default: a temporary dir)")
    parser.add_argument("--lake-dir", type=Path,
                        help="where the exporter writes the data lake's Parquet (default: a temporary dir)")
    parser.add_argument("--kafka-bootstrap", help="use this running broker instead of starting one")
    parser.add_argument("--database-url", help="use this running PostgreSQL instead of starting one")
    parser.add_argument("--prometheus-port", type=int, default=9090, help="Prometheus port (busy: a free one)")
    parser.add_argument("--no-prometheus", action="store_true", help="do not start Prometheus")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.add_argument("--json-logs", action="store_true", help="JSON log lines instead of console lines")
    return parser.parse_args(argv)


def generator_demo_env(rate: float) -> dict[str, str]:
    """The generator's variables for a demo that moves without loading the machine."""
    return {"GENERATOR_RATE": f"{rate:g}"}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    supervisor = Supervisor()
    with ExitStack() as resources:
        try:
            bootstrap, dsn = _backends(args, resources, supervisor)
            if stop.is_set():
                return 0
            artifact_dir = args.artifact_dir or Path(
                resources.enter_context(tempfile.TemporaryDirectory(prefix="fluxo-artifacts-"))
            )
            workers = [name for name in read_procfile() if name != GATEWAY]
            if args.gateway_port and port_open(args.gateway_port, _dial(args.gateway_host)):
                raise RuntimeError(f"port {args.gateway_port} is taken: pass --gateway-port")
            options = StackOptions(
                kafka_bootstrap=bootstrap,
                database_url=dsn,
                artifact_dir=artifact_dir.resolve(),
                lake_dir=args.lake_dir.resolve() if args.lake_dir else None,
                topic_prefix=args.topic_prefix,
                gateway_host=args.gateway_host,
                gateway_port=args.gateway_port,
                metrics_ports=pick_ports(workers, args.metrics_port_base),
                log_level=args.log_level,
                log_json=args.json_logs,
                extra_env={"generator": generator_demo_env(args.rate)},
            )
            stack = resources.enter_context(
                running_stack(
                    options,
                    supervisor,
                    prometheus=False if args.no_prometheus else None,
                    prometheus_port=args.prometheus_port,
                    topic_partitions=args.partitions,
                )
            )
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        width = max(len(what) for what, _ in stack.urls())
        supervisor.say("\n".join(f"{what.ljust(width)}  {url}" for what, url in stack.urls()))
        supervisor.say("running; Ctrl-C stops everything")
        while not stop.wait(0.5):
            stack.watch()
        supervisor.say("stopping the services, then Kafka and PostgreSQL")
    supervisor.say("stopped")
    return 0


def _backends(args: argparse.Namespace, resources: ExitStack, supervisor: Supervisor) -> tuple[str, str]:
    from shared.infra.kafka import LocalKafka
    from shared.infra.postgres import LocalPostgres

    dsn = args.database_url
    if dsn is None:
        postgres = resources.enter_context(LocalPostgres())
        supervisor.say(f"{postgres.version} at {postgres.dsn}")
        dsn = postgres.dsn
    bootstrap = args.kafka_bootstrap
    if bootstrap is None:
        kafka = resources.enter_context(LocalKafka())
        supervisor.say(f"Apache Kafka {kafka.version} at {kafka.bootstrap}")
        bootstrap = kafka.bootstrap
    return bootstrap, dsn


def _dial(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


if __name__ == "__main__":
    sys.exit(main())
