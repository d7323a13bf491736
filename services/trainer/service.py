"""The trainer process: window reader, command loop and schedule, wired up."""

from __future__ import annotations

import asyncio

import structlog
from aiokafka import AIOKafkaConsumer

from services.trainer import metrics
from services.trainer.commands import CommandHandler
from services.trainer.runs import TRANSIENT_ERRORS, Trainer, is_transient
from services.trainer.schedule import Scheduler
from services.trainer.shadows import ShadowJudge
from services.trainer.settings import TrainerSettings
from services.trainer.window import StreamWindow, WindowReader
from shared.db import apply_migrations, create_pool
from shared.kafka import BatchLoop, make_consumer, make_producer
from shared.kafka.admin import ensure_topics
from shared.ml import registry
from shared.ml.bundle import remove_unfinished
from shared.ml.publish import publish_model
from shared.service import finish_tasks, run_tasks
from shared.streams import builtin_streams
from shared.streams.catalog import Catalog, Declared, StreamsWatcher
from shared.topics import Topics

log = structlog.get_logger(__name__)


async def run(settings: TrainerSettings, stop: asyncio.Event) -> None:
    topics = Topics(settings.topic_prefix)
    bootstrap = settings.kafka_bootstrap_servers
    catalog = Catalog(builtin_streams())
    await ensure_topics(bootstrap, topics.all(catalog.names()), **settings.topic_replication)
    watcher = StreamsWatcher(bootstrap, topics.streams, catalog, f"{settings.service_name}-streams")
    settings.artifact_dir.mkdir(parents=True, exist_ok=True)
    pool = await create_pool(settings.database_url)
    producer = make_producer(bootstrap, settings.service_name)
    window_consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id=f"{settings.service_name}-window",
        group_id=None,
        enable_auto_commit=False,
        # Only if a position falls out of the log (retention): restart from its start.
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    commands_consumer = make_consumer(bootstrap, settings.commands_group, [topics.commands], settings.service_name,
                                      session_timeout_ms=settings.trainer_session_timeout_ms)
    tasks: list[asyncio.Task[None]] = []
    try:
        await apply_migrations(pool)
        # Before this trainer schedules runs of its own: those a killed
        # predecessor left 'running' would otherwise stay so for ever.
        abandoned = await registry.abandon_scheduled_runs(
            pool, settings.train_streams or None, "interrupted: the trainer stopped during the run")
        if abandoned:
            log.warning("scheduled_runs_abandoned", runs=abandoned)
        await watcher.start()
        removed = await asyncio.to_thread(remove_unfinished, settings.artifact_dir,
                                          [name for name in catalog.names() if settings.serves(name)])
        if removed:
            log.warning("unfinished_bundles_removed", paths=removed)
        await producer.start()
        # A trainer killed between its registry commit and its models event
        # left the models topic behind the registry: say again which models
        # are in service, so consumers and gateways agree now rather than at
        # their next registry re-read.
        served = [record for record in await registry.served_models(pool) if settings.serves(record.stream)]
        for record in served:
            if record.active:
                metrics.ACTIVE_VERSION.labels(record.stream, record.task).set(record.version)
            await publish_model(producer, topics, record)
        await window_consumer.start()
        windows = {
            name: StreamWindow(name, topics.features(name), settings.train_window_size, topics.labels(name))
            for name in catalog.names()
            if settings.serves(name)
        }
        reader = WindowReader(window_consumer, windows)
        await reader.start()

        def follow(name: str, declared: Declared) -> None:
            # A stream registered while running gets a window; an archived
            # one keeps its window (its data stays) but is no longer trained.
            if declared.active and settings.serves(name) and name not in windows:
                reader.add(StreamWindow(name, topics.features(name), settings.train_window_size, topics.labels(name)))

        catalog.on_change(follow)
        trainer = Trainer(settings, pool, producer, topics, catalog, windows, reader.ready)
        scheduler = Scheduler(
            trainer, catalog, windows, settings.train_interval, settings.train_min_rows, settings.train_test_size
        )
        await commands_consumer.start()
        loop = BatchLoop(
            commands_consumer,
            producer,
            CommandHandler(trainer, settings.serves, catalog),
            service=settings.service_name,
            deadletter_topic=topics.deadletter,
            max_records=10,
            transient_errors=TRANSIENT_ERRORS,
            transient=is_transient,
        )
        tasks = [
            asyncio.create_task(reader.run(stop), name="window"),
            asyncio.create_task(loop.run(stop), name="commands"),
            asyncio.create_task(watcher.run(stop), name="streams"),
            asyncio.create_task(ShadowJudge(pool, producer, topics, catalog).run(stop, settings.train_shadow_check_seconds),
                                name="shadows"),
        ]
        if settings.train_interval > 0:
            tasks.append(asyncio.create_task(scheduler.run(stop), name="schedule"))
        log.info("trainer_started", streams=list(windows), group=settings.commands_group, window=settings.train_window_size)
        await run_tasks(tasks, stop)
    finally:
        stop.set()
        # A run cut short is trained again: its command was not committed.
        await finish_tasks(tasks, grace=5.0)
        await commands_consumer.stop()
        await window_consumer.stop()
        await watcher.stop()
        await producer.stop()
        await pool.close()

