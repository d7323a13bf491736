"""Prometheus for `make run`: deploy/prometheus/prometheus.yml pointed at localhost.

The compose file's config is the one source of jobs; this module swaps each
job's targets for the local process's address (jobs are named after the
services) and drops jobs that have no local counterpart.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_CONFIG = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml"
SELF_JOB = "prometheus"


def localhost_config(
    source: str,
    targets: Mapping[str, str],
    prometheus_address: str,
    scrape_interval: str | None = None,
) -> dict[str, Any]:
    """The config with ``targets`` (job -> host:port) in place of compose's hostnames."""
    config = yaml.safe_load(source)
    if scrape_interval:
        config.setdefault("global", {})
        config["global"]["scrape_interval"] = scrape_interval
        config["global"]["evaluation_interval"] = scrape_interval
    jobs = []
    for job in config.get("scrape_configs", []):
        name = job["job_name"]
        address = prometheus_address if name == SELF_JOB else targets.get(name)
        if address is None:
            continue
        jobs.append({**job, "static_configs": [{"targets": [address]}]})
    missing = sorted(set(targets) - {job["job_name"] for job in jobs})
    if missing:
        raise ValueError(f"{COMPOSE_CONFIG.name} has no scrape job for {', '.join(missing)}")
    config["scrape_configs"] = jobs
    return config


def write_localhost_config(
    directory: Path,
    targets: Mapping[str, str],
    prometheus_address: str,
    scrape_interval: str | None = None,
    source: Path = COMPOSE_CONFIG,
) -> Path:
    path = directory / "prometheus.yml"
    config = localhost_config(source.read_text(), targets, prometheus_address, scrape_interval)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def find_prometheus() -> str | None:
    return shutil.which("prometheus")


def prometheus_argv(binary: str, config: Path, storage: Path, address: str) -> list[str]:
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={storage}",
        f"--web.listen-address={address}",
        "--storage.tsdb.retention.time=1d",
        # Its info lines (WAL, compaction) would drown the services' logs.
        "--log.level=warn",
    ]
