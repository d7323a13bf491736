"""The real ``fluxo`` client (as a process) against a real running gateway."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import asyncpg
import orjson
import pytest

from shared.db import create_pool
from tests.gateway.server import REPO, RunningGateway, gateway_process, register_energy_models, sync_database

API_KEY = "cli-test-key"


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> object:
        return orjson.loads(self.stdout)


def cli_env(gateway: RunningGateway | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FLUXO_URL", "FLUXO_API_KEY")}
    env["PYTHONPATH"] = str(REPO)
    env["COLUMNS"] = "200"  # wide enough that rich never wraps a table cell
    if gateway is not None:
        env["FLUXO_URL"] = gateway.url
        env["FLUXO_API_KEY"] = API_KEY
    env.update(extra)
    return env


async def start_cli(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process, timeout: float = 120) -> Result:
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return Result(process.returncode, stdout.decode(), stderr.decode())


@pytest.fixture(scope="module")
def cli_gateway(
    kafka_bootstrap: str, postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    workdir = tmp_path_factory.mktemp("cli")
    with sync_database(postgres_dsn, "cli") as dsn:
        register_energy_models(dsn, workdir / "artifacts")
        with gateway_process(kafka_bootstrap, dsn, workdir, FLUXO_API_KEY=API_KEY) as gateway:
            yield gateway


@pytest.fixture
def fluxo(cli_gateway: RunningGateway) -> Callable[..., asyncio.Future[Result]]:
    """Run ``fluxo ARGS`` with FLUXO_URL and FLUXO_API_KEY pointing at the gateway."""

    async def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
        return await finish(await start_cli(*args, env=env or cli_env(cli_gateway)), timeout)

    return run  # type: ignore[return-value]


@pytest.fixture
async def cli_db(cli_gateway: RunningGateway) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(cli_gateway.database_url)
    try:
        yield pool
    finally:
        await pool.close()
