"""Fluxo started as `make run` starts it (``python -m deploy.local``), as a
process, against the test session's Kafka and PostgreSQL with a database and
topic prefix of its own, for the console's tests to browse.

The gateway has an API key, so the tests see the console ask for it; the
trainer trains every few seconds once a few hundred events are in, so every
built-in task has a model within a minute or two.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from shared.db.databases import create_database, drop_database
from shared.infra._common import run_coroutine
from shared.infra.ports import free_port
from shared.streams import builtin_streams
from tests.processes import REPO, log_tail

API_KEY = "console-test-key"
# Enough events for the trainer within seconds, without loading two cores.
STACK_ENV = {
    "FLUXO_API_KEY": API_KEY,
    "TRAIN_INTERVAL": "8",
    "TRAIN_MIN_ROWS": "150",
    "GENERATOR_ANOMALY_RATE": "0.1",
    "GENERATOR_INVALID_RATE": "0.02",
    "CONSOLE_SAMPLE_SECONDS": "2",
}
RATE = "10"  # generator events per second per stream
READY_TIMEOUT = 120.0
MODELS_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0


@dataclass
class Stack:
    url: str
    database_url: str
    kafka_bootstrap: str
    topic_prefix: str
    artifact_dir: Path
    log: Path
    process: subprocess.Popen[bytes]

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def explain(self) -> str:
        state = "running" if self.process.poll() is None else f"exited with {self.process.returncode}"
        return f"deploy.local {state}; log {self.log}:\n{log_tail(self.log, 60)}"

    def wait(self, what: str, check: Any, timeout: float, interval: float = 1.0) -> Any:
        """Poll check() until it returns something truthy; fail with the stack's log when time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"the stack stopped while waiting for {what}\n{self.explain()}")
            try:
                result = check()
            except httpx.TransportError:
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:.0f} s\n{self.explain()}")
            time.sleep(interval)


def builtin_tasks() -> set[tuple[str, str]]:
    return {(spec.name, task.name) for spec in builtin_streams() for task in spec.tasks}


@contextmanager
def running_stack(kafka_bootstrap: str, postgres_dsn: str, workdir: Path) -> Iterator[Stack]:
    suffix = uuid.uuid4().hex[:8]
    database = f"fluxo_console_{suffix}"
    dsn = run_coroutine(create_database(postgres_dsn, database))
    port = free_port()
    artifacts = workdir / "artifacts"
    artifacts.mkdir(parents=True)
    log = workdir / "stack.log"
    prefix = f"console-{suffix}."
    argv = [
        sys.executable, "-m", "deploy.local", "--kafka-bootstrap", kafka_bootstrap, "--database-url", dsn,
        "--gateway-port", str(port), "--topic-prefix", prefix, "--artifact-dir", str(artifacts),
        "--no-prometheus", "--metrics-port-base", "0", "--rate", RATE, "--partitions", "3",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), **STACK_ENV}
    with log.open("wb") as output:
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)
    stack = Stack(f"http://127.0.0.1:{port}", dsn, kafka_bootstrap, prefix, artifacts, log, process)
    try:
        with stack.client() as client:
            stack.wait("the gateway's /ready", lambda: client.get("/ready").status_code == 200, READY_TIMEOUT)
        yield stack
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # deploy.local stops the services, then returns
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        run_coroutine(drop_database(postgres_dsn, database))


def wait_for_models(stack: Stack) -> dict[tuple[str, str], dict[str, Any]]:
    """Every built-in task's active model, once the trainer has made them all."""
    wanted = builtin_tasks()

    def active() -> dict[tuple[str, str], dict[str, Any]] | None:
        with stack.client() as client:
            models = client.get("/models", params={"limit": 1000}).json()
        found = {(m["stream"], m["task"]): m for m in models if m["active"]}
        return found if wanted <= set(found) else None

    return stack.wait(f"an active model for each of {sorted(wanted)}", active, MODELS_TIMEOUT, interval=2.0)
