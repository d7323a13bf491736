"""What `make run` starts: the Procfile's commands with each service's environment.

Pure functions only (no process is started here), so the plan is unit-tested
and shared by deploy.local and the stack test.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from honcho.environ import parse_procfile

from shared.infra.ports import free_port, port_open

REPO_ROOT = Path(__file__).resolve().parents[1]
PROCFILE = REPO_ROOT / "Procfile"
GATEWAY = "gateway"
# The gateway serves /metrics on its own HTTP port; the others on METRICS_PORT.
DEFAULT_METRICS_BASE_PORT = 9101


@dataclass(frozen=True)
class StackOptions:
    kafka_bootstrap: str
    database_url: str
    artifact_dir: Path
    topic_prefix: str = ""
    # The data lake's directory (EXPORT_DESTINATION); None: the exporter's default.
    lake_dir: Path | None = None
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    metrics_ports: Mapping[str, int] = field(default_factory=dict)
    log_level: str = "INFO"
    log_json: bool = False
    # Per service: extra variables (e.g. the generator's demo rate), applied last.
    extra_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ServicePlan:
    name: str
    argv: tuple[str, ...]
    env: dict[str, str]
    metrics_host: str
    metrics_port: int

    @property
    def metrics_url(self) -> str:
        return f"http://{self.metrics_host}:{self.metrics_port}/metrics"

    @property
    def target(self) -> str:
        """host:port as Prometheus scrapes it."""
        return f"{self.metrics_host}:{self.metrics_port}"


def read_procfile(path: Path = PROCFILE) -> dict[str, tuple[str, ...]]:
    """Process name -> argv, in the Procfile's order; ``python`` becomes this interpreter."""
    processes = parse_procfile(path.read_text()).processes
    commands: dict[str, tuple[str, ...]] = {}
    for name, command in processes.items():
        argv = shlex.split(command)
        if argv and argv[0] in ("python", "python3"):
            # The venv's interpreter, whatever PATH says (make calls .venv/bin/python).
            argv[0] = sys.executable
        commands[name] = tuple(argv)
    return commands


def pick_ports(names: Iterable[str], base: int, host: str = "127.0.0.1") -> dict[str, int]:
    """base, base+1, ... for the given names; a busy port is swapped for a free one.
    base 0 means free ports only (tests)."""
    ports: dict[str, int] = {}
    for offset, name in enumerate(names):
        wanted = base + offset if base else 0
        ports[name] = wanted if wanted and not port_open(wanted, host) else free_port()
    return ports


def plan_services(
    options: StackOptions, commands: Mapping[str, tuple[str, ...]], base_env: Mapping[str, str]
) -> list[ServicePlan]:
    plans: list[ServicePlan] = []
    for name, argv in commands.items():
        env = dict(base_env)
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=options.kafka_bootstrap,
            DATABASE_URL=options.database_url,
            ARTIFACT_DIR=str(options.artifact_dir),
            TOPIC_PREFIX=options.topic_prefix,
            SERVICE_NAME=name,
            LOG_LEVEL=options.log_level,
            LOG_JSON=str(options.log_json).lower(),
            PYTHONUNBUFFERED="1",
        )
        if options.lake_dir is not None:
            env["EXPORT_DESTINATION"] = str(options.lake_dir)
        if name == GATEWAY:
            host, port = options.gateway_host, options.gateway_port
            env.update(GATEWAY_HOST=host, GATEWAY_PORT=str(port), METRICS_PORT="0")
        else:
            host, port = "127.0.0.1", options.metrics_ports[name]
            env.update(METRICS_HOST=host, METRICS_PORT=str(port))
        env.update(options.extra_env.get(name, {}))
        plans.append(ServicePlan(name, argv, env, _reachable(host), port))
    return plans


def _reachable(host: str) -> str:
    # A server bound to every interface is scraped and browsed on loopback.
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def urls(plans: Iterable[ServicePlan], prometheus_url: str | None = None) -> list[tuple[str, str]]:
    """(what, url) lines printed when the stack is up."""
    lines: list[tuple[str, str]] = []
    for plan in plans:
        if plan.name == GATEWAY:
            base = f"http://{plan.metrics_host}:{plan.metrics_port}"
            lines += [("gateway", base), ("gateway docs", f"{base}/docs")]
    lines += [(f"{plan.name} metrics", plan.metrics_url) for plan in plans]
    if prometheus_url:
        lines.append(("prometheus", prometheus_url))
    return lines
