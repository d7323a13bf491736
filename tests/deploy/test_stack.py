"""The stack as `make run` starts it, scraped by a real Prometheus.

One module-scoped stack (deploy.local.running_stack against the session's
Kafka and PostgreSQL, a fresh topic prefix and database) serves every test
here: Prometheus's view of the targets and counters, and the dashboards'
queries checked against what the services really expose.
"""

from __future__ import annotations

import math
import re
import signal
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy.dashboards import dashboard_files, label_names, metric_names, panel_queries, template_queries
from deploy.local import RunningStack, running_stack
from deploy.plan import GATEWAY, StackOptions, pick_ports, read_procfile
from deploy.supervisor import Supervisor
from shared.db.databases import create_database, drop_database
from shared.infra._common import run_coroutine
from shared.infra.ports import free_port
from tests.deploy.debian import ensure_program
from tests.deploy.introspect import settings_class
from tests.helpers import wait_for

SERVICES = ("generator", "normalizer", "trainer", "consumer", "gateway", "exporter")
# Series Prometheus makes itself at scrape time; no /metrics page has them.
PROMETHEUS_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"})
# Metrics that rightly stay without samples in a short healthy run: nothing
# retries, no rebalance refuses a commit, no bundle is corrupt, nobody uploads
# or calls the gateway's scoring routes, no normalizer restarts (nothing to restore).
QUIET = frozenset(
    {
        "fluxo_handler_retries_total",
        "fluxo_commit_failures_total",
        "fluxo_normalizer_restored_keys_total",
        "fluxo_normalizer_replayed_total",
        "fluxo_normalizer_replay_skipped_total",
        "fluxo_gateway_upload_rows_total",
        "fluxo_gateway_predictions_served_total",
    }
)
# Grafana's variables, replaced the way Grafana would for "All" and a short range.
GRAFANA_VARIABLES = {"$__rate_interval": "30s", "$__range": "5m", "$__interval": "5s"}
# Enough data, invalid events and anomalies for every panel to move within a
# minute or two, at a load two cores carry with ease.
EXTRA_ENV = {
    "generator": {"GENERATOR_RATE": "40", "GENERATOR_INVALID_RATE": "0.02", "GENERATOR_ANOMALY_RATE": "0.1"},
    "trainer": {"TRAIN_INTERVAL": "5", "TRAIN_MIN_ROWS": "300"},
}
STARTUP_TIMEOUT = 180.0
MAX_RESTARTS = 3
DATA_TIMEOUT = 300.0

T = TypeVar("T")


@dataclass
class Stack:
    running: RunningStack
    log: Path

    @property
    def supervisor(self) -> Supervisor:
        return self.running.supervisor

    @property
    def prometheus(self) -> str:
        assert self.running.prometheus_url is not None
        return self.running.prometheus_url

    def metrics_urls(self) -> dict[str, str]:
        return {plan.name: plan.metrics_url for plan in self.running.plans}

    def assert_not_crash_looping(self) -> None:
        """Stop waiting early when a service keeps dying: the wait cannot succeed."""
        looping = {name: count for name, count in self.supervisor.restarts().items() if count >= MAX_RESTARTS}
        assert not looping, f"services crash-looping: {looping}\n{self.diagnose()}"

    def diagnose(self) -> str:
        """What to read when a wait runs out: who died, who restarted, and the last lines."""
        lines = [f"exited: {self.supervisor.exited()}, restarts: {self.supervisor.restarts()}, log: {self.log}"]
        for name in self.supervisor.children:
            lines.append(f"--- {name} (last lines)\n{self.supervisor.tail(name)[-3000:]}")
        return "\n".join(lines)


async def wait_or_explain(
    stack: Stack,
    predicate: Callable[[], Awaitable[T | None]],
    timeout: float,
    explain: Callable[[], str],
    interval: float = 1.0,
) -> T:
    """wait_for, with an explanation built when the wait runs out (not before)."""

    async def checked() -> T | None:
        stack.assert_not_crash_looping()
        try:
            return await predicate()
        except httpx.TransportError:
            return None  # not listening yet (Prometheus or a service still starting)

    try:
        return await wait_for(checked, timeout, interval=interval)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{explain()}") from None


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    return ensure_program("prometheus", "prometheus")


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, postgres_dsn: str, prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    suffix = uuid.uuid4().hex[:8]
    database = f"fluxo_stack_{suffix}"
    dsn = run_coroutine(create_database(postgres_dsn, database))
    workdir = tmp_path_factory.mktemp("stack")
    log_path = workdir / "services.log"
    workers = [name for name in read_procfile() if name != GATEWAY]
    options = StackOptions(
        kafka_bootstrap=kafka_bootstrap,
        database_url=dsn,
        artifact_dir=workdir / "artifacts",
        topic_prefix=f"stack-{suffix}.",
        gateway_port=free_port(),
        metrics_ports=pick_ports(workers, 0),
        extra_env=EXTRA_ENV,
    )
    (workdir / "artifacts").mkdir()
    try:
        with log_path.open("w") as log:
            supervisor = Supervisor(output=log, stop_timeout=30)
            with running_stack(
                options, supervisor, prometheus=True, prometheus_port=0, scrape_interval="1s", topic_partitions=3
            ) as running:
                yield Stack(running, log_path)
    finally:
        run_coroutine(drop_database(postgres_dsn, database))


async def query(client: httpx.AsyncClient, prometheus: str, expr: str) -> list[dict]:
    answer = await client.get(f"{prometheus}/api/v1/query", params={"query": expr})
    body = answer.json()
    assert body.get("status") == "success", f"Prometheus refused {expr!r}: {body}"
    return body["data"]["result"]


async def scrape(client: httpx.AsyncClient, url: str) -> str | None:
    try:
        answer = await client.get(url)
    except httpx.HTTPError:
        return None
    return answer.text if answer.status_code == 200 else None


@dataclass
class Exposed:
    """What the services' /metrics pages declare (HELP/TYPE) and which labels their samples carry."""

    declared: set[str]
    sampled: dict[str, set[str]]


def exposed_names(pages: list[str]) -> Exposed:
    declared: set[str] = set()
    sampled: dict[str, set[str]] = {}
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    for page in pages:
        for family in text_string_to_metric_families(page):
            declared.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
            for sample in family.samples:
                sampled.setdefault(sample.name, set()).update(sample.labels)
    return Exposed(declared, sampled)


def substitute(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


def all_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel, PromQL) of every panel and variable."""
    found = []
    for path in dashboard_files():
        found += [(path.stem, title, expr) for title, expr in panel_queries(path)]
        found += [(path.stem, "variable", expr) for expr in template_queries(path)]
    return found


def has_data(result: list[dict]) -> bool:
    return any(not math.isnan(float(item["value"][1])) for item in result if "value" in item)


def test_extra_variables_are_settings_of_their_service() -> None:
    for service, env in EXTRA_ENV.items():
        cls = settings_class(f"services.{service}.settings")
        assert {key.lower() for key in env} <= set(cls.model_fields), service
        cls(**{key.lower(): value for key, value in env.items()})


def test_dashboards_have_queries() -> None:
    boards = {path.stem for path in dashboard_files()}
    assert boards == {"pipeline", "models", "gateway", "alerts"}
    assert all(metric_names(expr) for _, _, expr in all_queries())


async def test_prometheus_scrapes_every_service(stack: Stack) -> None:
    async with httpx.AsyncClient(timeout=10) as client:

        async def health() -> dict[str, str] | None:
            answer = await client.get(f"{stack.prometheus}/api/v1/targets")
            if answer.status_code == 503:  # Prometheus still starting ("Service Unavailable")
                return None
            targets = answer.json()["data"]["activeTargets"]
            states = {target["labels"]["job"]: target["health"] for target in targets}
            return states if all(states.get(name) == "up" for name in (*SERVICES, "prometheus")) else None

        states = await wait_or_explain(
            stack, health, STARTUP_TIMEOUT, lambda: f"not every service target is up\n{stack.diagnose()}"
        )
    assert set(states) == {*SERVICES, "prometheus"}
    assert stack.supervisor.restarts() == {}, stack.diagnose()


async def test_pipeline_counters_increase(stack: Stack) -> None:
    counters = {
        "generator": 'sum(fluxo_events_out_total{service="generator"})',
        "normalizer in": 'sum(fluxo_events_in_total{service="normalizer"})',
        "normalizer out": 'sum(fluxo_events_out_total{service="normalizer"})',
        "consumer in": 'sum(fluxo_events_in_total{service="consumer"})',
        "consumer out": 'sum(fluxo_events_out_total{service="consumer"})',
        # The trainer reads features into its window outside BatchLoop; its
        # runs are what moves.
        "trainer": "sum(fluxo_training_runs_total)",
    }
    seen: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=10) as client:

        async def values() -> dict[str, float] | None:
            for name, expr in counters.items():
                result = await query(client, stack.prometheus, expr)
                if result:
                    seen[name] = float(result[0]["value"][1])
            return dict(seen) if len(seen) == len(counters) else None

        first = await wait_or_explain(
            stack,
            values,
            STARTUP_TIMEOUT,
            lambda: f"pipeline counters never appeared, only {seen}\n{stack.diagnose()}",
        )

        async def all_grew() -> dict[str, float] | None:
            now = await values()
            return now if now and all(now[name] > first[name] for name in counters) else None

        later = await wait_or_explain(
            stack, all_grew, 120, lambda: f"pipeline counters went from {first} to {seen}\n{stack.diagnose()}"
        )
    assert all(later[name] > first[name] > 0 for name in counters), (first, later)


async def test_dashboard_queries_are_valid_and_show_data(stack: Stack) -> None:
    queries = all_queries()
    async with httpx.AsyncClient(timeout=10) as client:
        # Prometheus parses every query now, data or not.
        for _, _, expr in queries:
            await query(client, stack.prometheus, substitute(expr))

        expected = [item for item in queries if not metric_names(item[2]) & QUIET]
        missing: list[str] = []

        async def all_show_data() -> bool:
            missing.clear()
            for board, title, expr in expected:
                if not has_data(await query(client, stack.prometheus, substitute(expr))):
                    missing.append(f"{board} / {title}: {expr}")
            return not missing

        await wait_or_explain(
            stack, all_show_data,
            DATA_TIMEOUT,
            lambda: "panels without data:\n" + "\n".join(missing) + f"\n{stack.diagnose()}",
            interval=2,
        )


async def test_dashboard_metrics_are_what_the_services_expose(stack: Stack) -> None:
    used: dict[str, set[str]] = {}
    for _, _, expr in all_queries():
        for name in metric_names(expr):
            used.setdefault(name, set()).update(label_names(expr))

    async with httpx.AsyncClient(timeout=10) as client:
        pages: list[str] = []

        async def every_page() -> bool:
            pages.clear()
            for url in stack.metrics_urls().values():
                page = await scrape(client, url)
                if page is None:
                    return False
                pages.append(page)
            return True

        await wait_or_explain(
            stack, every_page, STARTUP_TIMEOUT, lambda: f"a /metrics page is down\n{stack.diagnose()}"
        )
        exposed = exposed_names(pages)
        unknown = sorted(name for name in used if name not in exposed.declared and name not in PROMETHEUS_SERIES)
        assert unknown == [], f"dashboards query metrics no service exposes: {unknown}"

        # Labels are checked on metrics with samples: wait for the busy ones.
        busy = sorted(name for name in used if name not in QUIET | PROMETHEUS_SERIES)

        async def sampled() -> Exposed | None:
            if not await every_page():
                return None
            now = exposed_names(pages)
            return now if all(name in now.sampled for name in busy) else None

        latest = await wait_or_explain(
            stack, sampled,
            DATA_TIMEOUT,
            lambda: f"metrics without samples: {[n for n in busy if n not in exposed_names(pages).sampled]}"
            f"\n{stack.diagnose()}",
            interval=2,
        )
    wrong_labels = {
        name: sorted(labels - latest.sampled[name])
        for name, labels in used.items()
        if name in latest.sampled and labels - latest.sampled[name]
    }
    assert wrong_labels == {}, f"dashboards group or filter on labels these metrics do not carry: {wrong_labels}"


def test_stack_stops_cleanly(stack: Stack) -> None:
    services = list(SERVICES)
    assert sorted(stack.supervisor.running()) == sorted([*services, "prometheus"]), stack.diagnose()
    codes = stack.supervisor.stop(services)
    # uvicorn finishes its graceful shutdown, then re-raises the SIGTERM it
    # caught, so the gateway's clean exit reads -15 after its shutdown lines.
    if codes.get(GATEWAY) == -signal.SIGTERM and "Application shutdown complete" in stack.supervisor.tail(GATEWAY):
        codes[GATEWAY] = 0
    # SIGTERM is a clean stop for every service: exit code 0, nothing killed.
    assert codes == dict.fromkeys(services, 0), stack.diagnose()
