"""The gateway as a real process (``python -m services.gateway``), for tests
that talk HTTP to it: the schema fuzz and the command-line client."""

from __future__ import annotations

import asyncio
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

import httpx

from shared.db import apply_migrations, create_pool
from shared.db.databases import create_database, drop_database
from shared.infra.ports import free_port
from tests.gateway.bundles import register_model
from tests.processes import REPO, log_tail


@dataclass(frozen=True)
class RunningGateway:
    url: str
    env: dict[str, str]
    database_url: str
    artifact_dir: Path
    log: Path


@contextmanager
def sync_database(server_dsn: str, prefix: str) -> Iterator[str]:
    """A fresh database for a test module (created and dropped outside any event loop)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    dsn = asyncio.run(create_database(server_dsn, name))
    try:
        yield dsn
    finally:
        asyncio.run(drop_database(server_dsn, name))


def register_energy_models(database_url: str, artifact_dir: Path) -> None:
    """Active cluster and carbon models, in the registry before the gateway starts."""

    async def run() -> None:
        pool = await create_pool(database_url)
        try:
            await apply_migrations(pool)
            for task in ("cluster", "carbon"):
                await register_model(pool, artifact_dir, task)
        finally:
            await pool.close()

    asyncio.run(run())


@contextmanager
def gateway_process(
    kafka_bootstrap: str, database_url: str, workdir: Path, **env_overrides: str
) -> Iterator[RunningGateway]:
    """Start the gateway, wait until /ready answers 200, stop it with SIGTERM."""
    port = free_port()
    artifact_dir = workdir / "artifacts"
    artifact_dir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"gateway-{port}.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "ARTIFACT_DIR": str(artifact_dir),
        "TOPIC_PREFIX": f"gwp-{uuid.uuid4().hex[:8]}.",
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "LOG_JSON": "false",
        **env_overrides,
    }
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.gateway"], cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the gateway exited with {process.returncode}:\n{log_tail(log, 40)}")
            try:
                if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the gateway was not ready in 90 s:\n{log_tail(log, 40)}")
            time.sleep(0.2)
        yield RunningGateway(url, env, database_url, artifact_dir, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise AssertionError(f"the gateway ignored SIGTERM:\n{log_tail(log, 40)}") from None
    # uvicorn re-raises the signal once its graceful shutdown is done, so the
    # exit status says "terminated by SIGTERM"; the lifespan's last log line
    # is what shows the clients were closed.
    if process.returncode not in (0, -signal.SIGTERM) or "gateway_stopped" not in log_tail(log, 200):
        raise AssertionError(f"the gateway did not stop cleanly ({process.returncode}):\n{log_tail(log, 40)}")
