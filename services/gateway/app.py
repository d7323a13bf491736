"""The FastAPI application and the lifespan that owns its clients.

The lifespan opens one asyncpg pool (migrations applied) and one Kafka
producer, loads the stream catalog (registering the built-in declarations
on a first start) and follows the streams topic, loads the active models
and keeps them in step with the registry; on shutdown it stops everything
in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from fastapi import FastAPI

from services.gateway.bodylimit import BodyLimitMiddleware
from services.gateway.console import install_console, stop_console
from services.gateway.declarations import load_catalog
from services.gateway.errors import install_error_handlers
from services.gateway.metrics import MetricsMiddleware
from services.gateway.routes import data, exports, history, models, ops, scoring, streams, training, upload
from services.gateway.settings import GatewaySettings
from services.gateway.state import GatewayState
from shared.db import apply_migrations, create_pool
from shared.kafka import make_producer
from shared.kafka.admin import ensure_topics
from shared.kafka.guarded import GuardedProducer
from shared.ml.served import ServedModels, follow_registry, open_models_consumer
from shared.streams import builtin_streams
from shared.streams.catalog import Catalog, StreamsWatcher
from shared.topics import Topics

log = structlog.get_logger(__name__)

DESCRIPTION = """
Fluxo's REST gateway: register streams (declared as data, or inferred from a
spreadsheet), send events, score records with the newest models, upload
CSV/XLSX data into the pipeline, train on demand and browse the model registry.

When FLUXO_API_KEY is set, the routes that change something (registering a
stream, sending events, uploads, training) and model downloads need it in the
`X-API-Key` header.
"""


def create_app(settings: GatewaySettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            state = await _start(settings, stack)
            app.state.gateway = state
            stack.push_async_callback(stop_console, app)  # the console's Kafka readers, if a page started them
            log.info("gateway_ready", streams=state.catalog.names(), models=len(state.models.loaded()))
            yield
        log.info("gateway_stopped")

    app = FastAPI(
        title="Fluxo gateway",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for module in (scoring, streams, upload, training, models, data, history, exports, ops):
        app.include_router(module.router)
    install_console(app)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_json_body_bytes)
    app.add_middleware(MetricsMiddleware)
    return app


async def _start(settings: GatewaySettings, stack: contextlib.AsyncExitStack) -> GatewayState:
    topics = Topics(settings.topic_prefix)
    catalog = Catalog(builtin_streams())
    await ensure_topics(settings.kafka_bootstrap_servers, topics.all(), **settings.topic_replication)

    pool = await create_pool(settings.database_url)
    stack.push_async_callback(pool.close)
    await apply_migrations(pool)

    publisher = GuardedProducer(
        lambda: make_producer(settings.kafka_bootstrap_servers, f"{settings.service_name}-producer"),
        f"{settings.service_name}-producer",
    )
    stack.push_async_callback(publisher.stop)
    await publisher.start(30.0)

    # Follow the streams topic from its start (other gateways register too),
    # then take the registry's versions, which are authoritative.
    watcher = StreamsWatcher(settings.kafka_bootstrap_servers, topics.streams, catalog, f"{settings.service_name}-streams")
    stack.push_async_callback(watcher.stop)
    await watcher.start()
    models = ServedModels(settings.service_name, settings.artifact_dir, catalog, shadows=False,
                          registry_timeout=settings.dependency_timeout_seconds)
    state = GatewayState(settings=settings, topics=topics, publisher=publisher, pool=pool, catalog=catalog, models=models)
    await load_catalog(state, settings.dependency_timeout_seconds)
    await ensure_topics(settings.kafka_bootstrap_servers, topics.all(catalog.names()), **settings.topic_replication)

    consumer = await open_models_consumer(settings.kafka_bootstrap_servers, topics.models, f"{settings.service_name}-models")
    stack.push_async_callback(consumer.stop)
    await models.sync(pool)

    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(follow_registry(models, consumer, pool, settings.model_refresh_seconds, stop), name="models"),
        asyncio.create_task(watcher.run(stop), name="streams"),
    ]

    async def stop_tasks() -> None:
        stop.set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    stack.push_async_callback(stop_tasks)
    return state
