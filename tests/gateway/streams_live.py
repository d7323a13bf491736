"""Helpers for the tests that register streams in a running pipeline: the
worker services as processes next to the in-process gateway, and waits on
what they write."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from tests.gateway.conftest import Gateway
from tests.helpers import wait_for
from tests.processes import log_tail, service_process

WORKERS = ("normalizer", "trainer", "consumer")


def worker_env(gateway: Gateway) -> dict[str, str]:
    settings = gateway.settings
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DATABASE_URL": settings.database_url,
        "ARTIFACT_DIR": str(settings.artifact_dir),
        "TOPIC_PREFIX": settings.topic_prefix,
        "LOG_JSON": "false",
        "METRICS_PORT": "0",
    }


@contextmanager
def workers(gateway: Gateway, logs: Path, **extra: dict[str, str]) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """The normalizer, trainer and consumer as processes; ``extra`` adds
    environment per worker (``trainer={"TRAIN_INTERVAL": "2"}``)."""
    logs.mkdir(exist_ok=True)
    with ExitStack() as stack:
        processes = {
            name: stack.enter_context(service_process(
                f"services.{name}", {**worker_env(gateway), **extra.get(name, {})}, logs / f"{name}.log"
            ))
            for name in WORKERS
        }
        yield processes


async def started(logs: Path, processes: dict[str, subprocess.Popen[bytes]]) -> None:
    """Every worker logged that it runs (and none died)."""
    for name, process in processes.items():
        log = logs / f"{name}.log"

        def up(name: str = name, process: subprocess.Popen[bytes] = process, log: Path = log) -> bool:
            assert process.poll() is None, f"{name} exited {process.returncode}:\n{log_tail(log)}"
            return f"{name}_started" in log_tail(log, 400)

        await wait_for(up, 120, interval=0.3, message=f"{name} did not start:\n{log_tail(log)}")


def still_running(processes: dict[str, subprocess.Popen[bytes]], logs: Path) -> None:
    for name, process in processes.items():
        assert process.poll() is None, f"{name} exited {process.returncode}:\n{log_tail(logs / f'{name}.log')}"


async def finished_run(gateway: Gateway, request: dict[str, Any], logs: Path, timeout: float = 240) -> dict[str, Any]:
    """POST /train and wait for the run to end; returns its status."""
    started_run = await gateway.client.post("/train", json=request)
    assert started_run.status_code == 202, started_run.text

    async def done() -> dict[str, Any] | None:
        run = (await gateway.client.get(started_run.json()["status_url"])).json()
        return run if run["status"] in ("done", "failed") else None

    return await wait_for(done, timeout, interval=0.5, message=f"run not finished:\n{log_tail(logs / 'trainer.log')}")


async def scored_rows(gateway: Gateway, event_ids: list[str], task: str) -> list[dict[str, Any]] | None:
    """The prediction rows of these events for ``task``, once every one is scored."""
    rows = await gateway.state.pool.fetch(
        """SELECT event_id, model_version, status, prediction, label, actual, error, percent_error
           FROM predictions WHERE event_id = ANY($1::text[]) AND task = $2""",
        event_ids, task,
    )
    if len(rows) < len(event_ids) or any(row["status"] != "scored" for row in rows):
        return None
    return [dict(row) for row in rows]
