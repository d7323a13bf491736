"""The FastAPI application and the lifespan that owns its clients.

The lifespan creates the topics, opens one asyncpg pool (migrations applied)
and one Kafka producer, loads the active models and starts the task that
keeps them current; on shutdown it stops them in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from fastapi import FastAPI

from services.gateway.cache import ModelCache, open_models_consumer, watch_models
from services.gateway.console import install_console
from services.gateway.errors import install_error_handlers
from services.gateway.metrics import MetricsMiddleware
from services.gateway.routes import data, models, ops, scoring, training, upload
from services.gateway.settings import GatewaySettings
from services.gateway.state import GatewayState
from shared.db import apply_migrations, create_pool
from shared.kafka import make_producer
from shared.kafka.admin import ensure_topics
from shared.topics import Topics

log = structlog.get_logger(__name__)

DESCRIPTION = """
Fluxo's REST gateway: score records with the newest models, upload CSV/XLSX
data into the pipeline, train on demand and browse the model registry.

When FLUXO_API_KEY is set, `/upload`, `/train` and the model downloads need it
in the `X-API-Key` header.
"""


def create_app(settings: GatewaySettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            state = await _start(settings, stack)
            app.state.gateway = state
            log.info("gateway_ready", models=len(state.cache.loaded()))
            yield
        log.info("gateway_stopped")

    app = FastAPI(
        title="Fluxo gateway",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for module in (scoring, upload, training, models, data, ops):
        app.include_router(module.router)
    install_console(app)
    app.add_middleware(MetricsMiddleware)
    return app


async def _start(settings: GatewaySettings, stack: contextlib.AsyncExitStack) -> GatewayState:
    topics = Topics(settings.topic_prefix)
    await ensure_topics(settings.kafka_bootstrap_servers, topics.all())

    pool = await create_pool(settings.database_url)
    stack.push_async_callback(pool.close)
    await apply_migrations(pool)

    producer = make_producer(settings.kafka_bootstrap_servers, f"{settings.service_name}-producer")
    await producer.start()
    stack.push_async_callback(producer.stop)

    consumer = await open_models_consumer(
        settings.kafka_bootstrap_servers, topics.models, f"{settings.service_name}-models"
    )
    stack.push_async_callback(consumer.stop)

    cache = ModelCache(settings.artifact_dir)
    await cache.refresh(pool)

    stop = asyncio.Event()
    watcher = asyncio.create_task(
        watch_models(cache, consumer, pool, settings.model_refresh_seconds, stop), name="watch-models"
    )

    async def stop_watcher() -> None:
        stop.set()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher

    stack.push_async_callback(stop_watcher)
    return GatewayState(settings=settings, topics=topics, producer=producer, pool=pool, cache=cache)
