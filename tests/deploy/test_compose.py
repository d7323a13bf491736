"""docker-compose.yml and .env.example, validated by Debian's docker-compose.

`docker-compose config` parses and interpolates the file without a Docker
engine. It runs in a temporary copy with a .env made from .env.example and a
minimal environment, so the caller's shell cannot change the outcome.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.plan import read_procfile
from tests.deploy.debian import ensure_program
from tests.deploy.introspect import settings_class

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("generator", "normalizer", "trainer", "consumer", "exporter")
SERVICES = (*WORKERS, "gateway")
LAKE_USERS = ("trainer", "exporter")
ARTIFACT_USERS = ("trainer", "consumer", "gateway")


@pytest.fixture(scope="module")
def docker_compose() -> str:
    return ensure_program("docker-compose", "docker-compose")


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: not KEY=value: {line!r}"
            values[key.strip()] = value
    return values


def project_copy(tmp_path: Path, env_text: str) -> Path:
    project = tmp_path / "fluxo"
    project.mkdir()
    for name in ("docker-compose.yml", "Dockerfile", ".dockerignore"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "deploy" / "prometheus", project / "deploy" / "prometheus")
    shutil.copytree(ROOT / "deploy" / "grafana", project / "deploy" / "grafana")
    (project / ".env").write_text(env_text)
    return project


def compose(binary: str, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(project)}
    return subprocess.run(
        [binary, *args], cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """target -> source of a rendered service's volumes; docker-compose 1.x
    renders them as "source:target:mode" strings, 2.x as mappings."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        found[target] = source
    return found


def rendered(binary: str, project: Path) -> dict[str, Any]:
    result = compose(binary, project, "config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_is_valid(docker_compose: str, tmp_path: Path) -> None:
    project = project_copy(tmp_path, (ROOT / ".env.example").read_text())
    result = compose(docker_compose, project, "config", "-q")
    assert result.returncode == 0, f"docker-compose config -q failed:\n{result.stderr}"
    assert "ERROR" not in result.stderr, result.stderr


def test_compose_runs_the_stack_the_issue_asks_for(docker_compose: str, tmp_path: Path) -> None:
    env = env_example()
    config = rendered(docker_compose, project_copy(tmp_path, (ROOT / ".env.example").read_text()))
    services = config["services"]
    assert set(services) == {*SERVICES, "kafka", "postgres", "topic-init", "prometheus", "grafana"}

    kafka, postgres = services["kafka"], services["postgres"]
    assert kafka["image"] == "apache/kafka:4.1.1"
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert postgres["image"] == "postgres:16"
    for infra in (kafka, postgres):
        assert infra["healthcheck"]["test"], infra
    assert mounts(postgres)["/var/lib/postgresql/data"] == "postgres-data"

    topic_init = services["topic-init"]
    assert topic_init["command"] == ["python", "-m", "deploy.topics"]
    assert topic_init["environment"]["TOPIC_PARTITIONS"] == env["TOPIC_PARTITIONS"]

    procfile = read_procfile(ROOT / "Procfile")
    for name in SERVICES:
        service = services[name]
        # The Procfile (make run) and compose run the same entrypoint.
        assert service["command"] == ["python", *procfile[name][1:]], name
        assert service["restart"] == "unless-stopped", name
        assert service["depends_on"] == {
            "kafka": {"condition": "service_healthy"},
            "postgres": {"condition": "service_healthy"},
            "topic-init": {"condition": "service_completed_successfully"},
        }, name
        assert service["environment"]["SERVICE_NAME"] == name
        assert service["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["POSTGRES_PASSWORD"] in service["environment"]["DATABASE_URL"]
        assert service["image"] == services["topic-init"]["image"], "one image for every service"
        if name in ARTIFACT_USERS:
            assert mounts(service)[service["environment"]["ARTIFACT_DIR"]] == "artifacts", name
        else:
            assert "artifacts" not in mounts(service).values(), name
    for name in LAKE_USERS:
        assert mounts(services[name])["/data/lake"] == "lake", name
        assert services[name]["environment"]["AWS_REGION"] == env["AWS_REGION"], name
    assert services["exporter"]["environment"]["EXPORT_DESTINATION"] == env["EXPORT_DESTINATION"]
    for name in WORKERS:
        assert services[name]["environment"]["METRICS_HOST"] == "0.0.0.0"
        assert services[name]["environment"]["METRICS_PORT"] == "9100"
    assert services["gateway"]["environment"]["FLUXO_API_KEY"] == env["FLUXO_API_KEY"]

    grafana = services["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == env["GRAFANA_ADMIN_PASSWORD"]
    assert (grafana["environment"]["GF_SECURITY_ADMIN_USER"], env["GRAFANA_ADMIN_PASSWORD"]) != ("admin", "admin")
    assert mounts(grafana)["/etc/grafana/provisioning"].endswith("deploy/grafana/provisioning")
    assert mounts(grafana)["/var/lib/grafana/dashboards"].endswith("deploy/grafana/dashboards")
    prometheus_config = mounts(services["prometheus"])["/etc/prometheus/prometheus.yml"]
    assert prometheus_config.endswith("deploy/prometheus/prometheus.yml")


@pytest.mark.parametrize("secret", ["GRAFANA_ADMIN_PASSWORD", "POSTGRES_PASSWORD", "FLUXO_API_KEY"])
def test_compose_refuses_to_run_without_a_secret(docker_compose: str, tmp_path: Path, secret: str) -> None:
    text = "\n".join(
        line for line in (ROOT / ".env.example").read_text().splitlines() if not line.startswith(f"{secret}=")
    )
    result = compose(docker_compose, project_copy(tmp_path, text), "config", "-q")
    assert result.returncode != 0
    assert secret in result.stderr and "set it in .env" in result.stderr, result.stderr


def test_env_example_documents_every_variable() -> None:
    compose_text = (ROOT / "docker-compose.yml").read_text()
    # ${NAME}, ${NAME:-default}, ${NAME:?message}; $$ escapes a literal dollar.
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", compose_text))
    documented = env_example()
    assert used - set(documented) == set(), "used in docker-compose.yml, missing from .env.example"
    assert set(documented) - used == set(), "in .env.example, unused by docker-compose.yml"
    # Each variable sits in a paragraph that a comment opens.
    for paragraph in (ROOT / ".env.example").read_text().split("\n\n"):
        lines = [line for line in paragraph.splitlines() if line.strip()]
        for index, line in enumerate(lines):
            if not line.startswith("#"):
                assert any(above.startswith("# ") and "---" not in above for above in lines[:index]), (
                    f"{line.split('=')[0]} has no comment explaining it"
                )


def test_prometheus_scrapes_every_service() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    for name in WORKERS:
        assert targets[name] == [f"{name}:9100"]
    assert targets["gateway"] == ["gateway:8000"]
    assert set(read_procfile(ROOT / "Procfile")) <= set(targets)


def test_prometheus_config_passes_promtool() -> None:
    promtool = ensure_program("promtool", "prometheus")
    result = subprocess.run(
        [promtool, "check", "config", str(ROOT / "deploy" / "prometheus" / "prometheus.yml")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards" / "fluxo.yml").read_text())["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    for path in sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        assert board["uid"].startswith("fluxo-"), path.name
        sources = {
            target["datasource"]["uid"]
            for panel in board["panels"]
            for target in panel.get("targets", [])
        }
        assert sources <= {datasource["uid"]}, f"{path.name} uses another datasource: {sources}"
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"


def test_every_variable_compose_sets_is_a_setting_the_service_reads(docker_compose: str, tmp_path: Path) -> None:
    # Settings ignore unknown variables, so a misspelt name would pass silently.
    services = rendered(docker_compose, project_copy(tmp_path, (ROOT / ".env.example").read_text()))["services"]
    modules = {name: f"services.{name}.settings" for name in SERVICES} | {"topic-init": "deploy.topics"}
    for name, module in modules.items():
        cls = settings_class(module)
        env = services[name]["environment"]
        unknown = sorted(key for key in env if key.lower() not in cls.model_fields)
        assert unknown == [], f"{name} does not read {unknown}"
        # And the values are valid for it: the service would start with them.
        settings = cls(**{key.lower(): value for key, value in env.items()})
        assert settings.service_name == env.get("SERVICE_NAME", settings.service_name)
