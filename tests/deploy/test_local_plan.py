"""The pure parts of `make run`: Procfile, per-service environment, Prometheus
config rewrite, PromQL metric-name extraction, the supervisor's prefixing."""

from __future__ import annotations

import io
import socket
import sys
import time
from pathlib import Path

import pytest
import yaml

from deploy.dashboards import label_names, metric_names
from deploy.plan import StackOptions, pick_ports, plan_services, read_procfile, urls
from deploy.prometheus_local import COMPOSE_CONFIG, localhost_config
from deploy.supervisor import Supervisor
from shared.settings import ServiceSettings

SERVICES = ["generator", "normalizer", "trainer", "consumer", "gateway", "exporter"]


def options(**overrides: object) -> StackOptions:
    values: dict[str, object] = {
        "kafka_bootstrap": "127.0.0.1:19092",
        "database_url": "postgresql://postgres@127.0.0.1:15432/postgres",
        "artifact_dir": Path("/tmp/fluxo-artifacts"),
        "topic_prefix": "demo.",
        "gateway_port": 18000,
        "metrics_ports": {"generator": 19101, "normalizer": 19102, "trainer": 19103, "consumer": 19104,
                         "exporter": 19105},
    }
    values.update(overrides)
    return StackOptions(**values)  # type: ignore[arg-type]


def test_procfile_runs_the_six_services_with_this_interpreter() -> None:
    commands = read_procfile()
    assert list(commands) == SERVICES
    for name, argv in commands.items():
        assert argv == (sys.executable, "-m", f"services.{name}")


def test_each_service_gets_its_own_settings() -> None:
    plans = plan_services(options(), read_procfile(), {"PATH": "/usr/bin", "HOME": "/root"})
    by_name = {plan.name: plan for plan in plans}
    assert list(by_name) == SERVICES
    for name, plan in by_name.items():
        fields = {key.lower(): value for key, value in plan.env.items() if key.lower() in ServiceSettings.model_fields}
        settings = ServiceSettings(**fields)
        assert settings.service_name == name
        assert settings.kafka_bootstrap_servers == "127.0.0.1:19092"
        assert settings.topic_prefix == "demo."
        assert plan.env["PATH"] == "/usr/bin", "the caller's environment is inherited"
    assert by_name["generator"].metrics_url == "http://127.0.0.1:19101/metrics"
    assert by_name["generator"].env["METRICS_PORT"] == "19101"
    assert by_name["gateway"].env["GATEWAY_PORT"] == "18000"
    assert by_name["gateway"].env["METRICS_PORT"] == "0"
    assert by_name["gateway"].metrics_url == "http://127.0.0.1:18000/metrics"
    ports = [plan.metrics_port for plan in plans]
    assert len(set(ports)) == len(ports)


def test_extra_env_is_applied_last() -> None:
    extra = {"generator": {"GENERATOR_RATE": "5", "LOG_LEVEL": "DEBUG"}}
    plans = plan_services(options(extra_env=extra), read_procfile(), {})
    generator = next(plan for plan in plans if plan.name == "generator")
    assert generator.env["GENERATOR_RATE"] == "5"
    assert generator.env["LOG_LEVEL"] == "DEBUG"
    assert all("GENERATOR_RATE" not in plan.env for plan in plans if plan.name != "generator")


def test_busy_ports_are_replaced() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        ports = pick_ports(["a", "b"], taken)
    assert ports["a"] != taken
    assert len(set(ports.values())) == 2
    assert all(port > 0 for port in pick_ports(["a"], 0).values())


def test_urls_list_gateway_docs_and_every_metrics_endpoint() -> None:
    plans = plan_services(options(), read_procfile(), {})
    listed = dict(urls(plans, "http://127.0.0.1:9090"))
    assert listed["gateway docs"] == "http://127.0.0.1:18000/docs"
    assert listed["prometheus"] == "http://127.0.0.1:9090"
    assert {f"{name} metrics" for name in SERVICES} <= set(listed)


def test_prometheus_config_is_rewritten_for_localhost() -> None:
    targets = {name: f"127.0.0.1:{19100 + i}" for i, name in enumerate(SERVICES)}
    config = localhost_config(COMPOSE_CONFIG.read_text(), targets, "127.0.0.1:19090", scrape_interval="1s")
    jobs = {job["job_name"]: job["static_configs"] for job in config["scrape_configs"]}
    assert jobs.pop("prometheus") == [{"targets": ["127.0.0.1:19090"]}]
    assert jobs == {name: [{"targets": [address]}] for name, address in targets.items()}
    assert config["global"]["scrape_interval"] == "1s"
    yaml.safe_dump(config)  # serialisable as Prometheus reads it


def test_prometheus_rewrite_refuses_a_service_without_a_job() -> None:
    with pytest.raises(ValueError, match="no scrape job for extra"):
        localhost_config(COMPOSE_CONFIG.read_text(), {"extra": "127.0.0.1:1"}, "127.0.0.1:9090")


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("sum by (service, topic) (rate(fluxo_events_in_total[$__rate_interval]))", {"fluxo_events_in_total"}),
        (
            "histogram_quantile(0.99, sum by (le, route) "
            '(rate(fluxo_gateway_request_latency_seconds_bucket{route!="/metrics"}[5m])))',
            {"fluxo_gateway_request_latency_seconds_bucket"},
        ),
        (
            "sum(rate(a_total[1m])) / ignoring(status) group_left sum(rate(b_total{x=~\"$stream\"}[1m] offset 5m))",
            {"a_total", "b_total"},
        ),
        ('label_replace(up{job="x"}, "dst", "$1", "src", "(.*)") > bool 0.5', {"up"}),
        ("max without (instance) (fluxo_model_version) or on() vector(0)", {"fluxo_model_version"}),
        ("1e3 * fluxo_x", {"fluxo_x"}),
    ],
)
def test_metric_names_are_read_from_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


@pytest.mark.parametrize(
    ("expr", "labels"),
    [
        ("histogram_quantile(0.5, sum by (le, service) (rate(x_bucket{service=~\"$service\"}[5m])))", {"service"}),
        (
            'sum by (neighbourhood) (increase(fluxo_alerts_total{stream="pressure", job!="x"}[1h]))',
            {"neighbourhood", "stream"},
        ),
        ("max without (instance) (up)", set()),
        ("group by (route) (fluxo_gateway_requests_total)", {"route"}),
    ],
)
def test_label_names_are_read_from_promql(expr: str, labels: set[str]) -> None:
    assert label_names(expr) == labels


def test_supervisor_prefixes_lines_and_stops_everything() -> None:
    out = io.StringIO()
    supervisor = Supervisor(output=out, stop_timeout=10)
    supervisor.start("talker", [sys.executable, "-u", "-c", "import time; print('hello'); time.sleep(60)"], {})
    supervisor.start("quitter", [sys.executable, "-c", "import sys; print('bye'); sys.exit(3)"], {})
    deadline = time.monotonic() + 20
    while ("hello" not in out.getvalue() or "quitter" not in supervisor.exited()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert supervisor.exited() == {"quitter": 3}
    assert supervisor.running() == ["talker"]
    supervisor.restart("quitter")
    while "quitter" not in supervisor.exited() and time.monotonic() < deadline:
        time.sleep(0.05)
    codes = supervisor.stop()
    assert codes["quitter"] == 3
    assert codes["talker"] == -15  # SIGTERM
    assert supervisor.restarts() == {"quitter": 1}
    lines = out.getvalue().splitlines()
    assert any(" talker " in line and line.endswith("| hello") for line in lines)
    assert sum(" quitter " in line and line.endswith("| bye") for line in lines) == 2  # started twice
    assert supervisor.tail("talker") == "hello"


def test_demo_rate_is_a_generator_setting() -> None:
    from deploy.local import generator_demo_env
    from services.generator.settings import GeneratorSettings

    env = generator_demo_env(12.5)
    settings = GeneratorSettings(**{key.lower(): value for key, value in env.items()})
    assert settings.generator_rate == 12.5
