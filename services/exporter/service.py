"""The exporter process: the schedule, the queue of exports, the runs.

One exporter writes to a destination at a time: it holds a PostgreSQL
advisory lock on the destination's name for as long as it runs (a second
replica waits for it), so an export left ``running`` towards its
destination while it runs none was cut short (by an exporter that died, or
PostgreSQL going away mid-run): it goes back to the queue and is finished,
its pending segments redone. Every
EXPORT_INTERVAL seconds a scheduled export is queued (the first at start);
POST /v1/exports queues one on demand. Exports run one at a time, oldest
first.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from services.exporter import metrics
from services.exporter.job import DATABASE_ERRORS, Exporter
from services.exporter.settings import ExporterSettings
from shared.db import apply_migrations, create_pool
from shared.lake import manifest
from shared.lake.destination import Destination, open_destination
from shared.service import finish_tasks, run_tasks
from shared.streams import builtin_streams
from shared.streams.catalog import Catalog, StreamsWatcher
from shared.topics import Topics

log = structlog.get_logger(__name__)

TRANSIENT: tuple[type[BaseException], ...] = (*DATABASE_ERRORS, OSError, TimeoutError)
_LOCK_NAMESPACE = "fluxo-lake:"


@contextlib.asynccontextmanager
async def destination_lock(pool: asyncpg.Pool, destination: Destination, stop: asyncio.Event,
                           poll: float) -> AsyncIterator[bool]:
    """Hold the destination's lock on a connection of its own; yields False
    if ``stop`` came first."""
    async with pool.acquire() as connection:
        key = _LOCK_NAMESPACE + destination.name
        while not await connection.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key):
            log.info("destination_busy", destination=destination.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll * 5)
            if stop.is_set():
                yield False
                return
        try:
            yield True
        finally:
            with contextlib.suppress(*TRANSIENT):
                await connection.execute("SELECT pg_advisory_unlock(hashtext($1))", key)


async def queue_if_due(pool: asyncpg.Pool, interval: float) -> str | None:
    """Queue a scheduled export when the last one is ``interval`` seconds old (or there is none)."""
    last = await manifest.last_scheduled(pool)
    if last is not None and datetime.now(UTC) - last < timedelta(seconds=interval):
        return None
    export_id = uuid.uuid4().hex
    await manifest.queue_export(pool, export_id, manifest.SCHEDULE)
    log.info("export_scheduled", export_id=export_id)
    return export_id


async def work(settings: ExporterSettings, pool: asyncpg.Pool, exporter: Exporter, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            # Between runs nothing of ours is running: a run cut short (by an
            # exporter that died, or PostgreSQL going away mid-run) is resumed.
            await manifest.requeue_running(pool, exporter.destination.name)
            if settings.export_interval > 0:
                await queue_if_due(pool, settings.export_interval)
            export = await manifest.claim_export(pool, exporter.destination.name)
            if export is not None:
                await exporter.run(export, stop)
                continue
        except TRANSIENT as error:
            # PostgreSQL away: the run stays queued or running and is taken up again.
            metrics.EXPORT_FAILURES.labels("database").inc()
            log.warning("exporter_database_unavailable", error=f"{type(error).__name__}: {error}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.export_poll_seconds)


async def run(settings: ExporterSettings, stop: asyncio.Event) -> None:
    topics = Topics(settings.topic_prefix)
    bootstrap = settings.kafka_bootstrap_servers
    catalog = Catalog(builtin_streams())
    destination = open_destination(settings.export_destination, settings)
    watcher = StreamsWatcher(bootstrap, topics.streams, catalog, f"{settings.service_name}-streams")
    pool = await create_pool(settings.database_url, max_size=3, command_timeout=settings.export_database_timeout)
    tasks: list[asyncio.Task[None]] = []
    try:
        await apply_migrations(pool)
        await watcher.start()
        async with destination_lock(pool, destination, stop, settings.export_poll_seconds) as locked:
            if not locked:
                return
            log.info("exporter_started", destination=destination.name, interval=settings.export_interval,
                     streams=catalog.names())
            exporter = Exporter(settings, pool, catalog, topics, destination)
            tasks = [
                asyncio.create_task(work(settings, pool, exporter, stop), name="exports"),
                asyncio.create_task(watcher.run(stop), name="streams"),
            ]
            await run_tasks(tasks, stop)
            stop.set()
            await finish_tasks(tasks, grace=30.0)
    finally:
        stop.set()
        await finish_tasks(tasks, grace=30.0)
        await watcher.stop()
        await pool.close()
