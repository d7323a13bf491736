"""A real gateway per test: its own database and topic prefix on the session's
Kafka broker and PostgreSQL server, the lifespan run, httpx against the app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.gateway.state import GatewayState
from shared.db.databases import fresh_database
from shared.ml.publish import model_message
from shared.ml.registry import ModelRecord
from tests.gateway.bundles import Bundle, register_model
from tests.helpers import wait_for


@dataclass
class Gateway:
    app: FastAPI
    client: httpx.AsyncClient
    settings: GatewaySettings

    @property
    def state(self) -> GatewayState:
        return self.app.state.gateway

    async def add_model(self, task: str, *, seed: int = 0, publish: bool = True) -> tuple[ModelRecord, Bundle]:
        """Register a real bundle as the active model and announce it on the models topic."""
        record, bundle = await register_model(self.state.pool, self.settings.artifact_dir, task, seed=seed)
        if publish:
            await self.state.publisher.send([model_message(self.state.topics, record)], 30)
        return record, bundle

    async def serving(self, task: str, model_id: int, timeout: float = 30) -> None:
        def loaded() -> bool:
            model = self.state.models.get("energy", task)
            return model is not None and model.model_id == model_id

        await wait_for(loaded, timeout, message=f"gateway did not load model {model_id} for energy/{task}")


GatewayFactory = Callable[..., AbstractAsyncContextManager[Gateway]]


@pytest.fixture
def gateway_settings(
    kafka_bootstrap: str, unique_name: Callable[..., str], tmp_path: Path
) -> Callable[..., GatewaySettings]:
    prefix = unique_name("gw") + "."

    def make(database_url: str, **overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {
            "kafka_bootstrap_servers": kafka_bootstrap,
            "database_url": database_url,
            "artifact_dir": tmp_path / "artifacts",
            "topic_prefix": prefix,
            "log_json": False,
        }
        values.update(overrides)
        return GatewaySettings(**values)

    return make


@pytest.fixture
async def database(postgres_dsn: str, unique_name: Callable[..., str]) -> AsyncIterator[str]:
    async with fresh_database(postgres_dsn, unique_name("gwdb")) as dsn:
        yield dsn


@pytest.fixture
def make_gateway(database: str, gateway_settings: Callable[..., GatewaySettings]) -> GatewayFactory:
    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Gateway]:
        settings = gateway_settings(database, **overrides)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=60) as client:
                yield Gateway(app, client, settings)

    return start


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> AsyncIterator[Gateway]:
    async with make_gateway() as gw:
        yield gw


@pytest.fixture
async def energy_models(gateway: Gateway) -> dict[str, ModelRecord]:
    """Active cluster and carbon models, loaded by the gateway through the models topic."""
    records = {}
    for task in ("cluster", "carbon"):
        record, _ = await gateway.add_model(task)
        await gateway.serving(task, record.id)
        records[task] = record
    return records
