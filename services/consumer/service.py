"""The consumer process: active models, the models watcher and the scoring loop."""

from __future__ import annotations

import asyncio

import structlog
from aiokafka import AIOKafkaConsumer

from services.consumer.handler import TRANSIENT_DB_ERRORS, ScoringHandler
from services.consumer.models import ActiveModels
from services.consumer.rolling import RollingErrors
from services.consumer.settings import ConsumerSettings
from services.consumer.watcher import ModelWatcher
from shared.db import apply_migrations, create_pool
from shared.kafka import BatchLoop, make_consumer, make_producer
from shared.kafka.admin import ensure_topics
from shared.service import finish_tasks, run_tasks
from shared.topics import Topics

log = structlog.get_logger(__name__)


async def run(settings: ConsumerSettings, stop: asyncio.Event) -> None:
    topics = Topics(settings.topic_prefix)
    bootstrap = settings.kafka_bootstrap_servers
    streams = settings.streams
    await ensure_topics(bootstrap, topics.all(), **settings.topic_replication)
    pool = await create_pool(settings.database_url, max_size=settings.consumer_db_pool_size)
    producer = make_producer(bootstrap, settings.service_name)
    models_consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id=f"{settings.service_name}-models",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    features_consumer = make_consumer(
        bootstrap,
        settings.group,
        [topics.features(name) for name in streams],
        settings.service_name,
        session_timeout_ms=settings.consumer_session_timeout_ms,
    )
    tasks: list[asyncio.Task[None]] = []
    try:
        await apply_migrations(pool)
        await producer.start()
        await models_consumer.start()
        models = ActiveModels(settings.artifact_dir, streams)
        watcher = ModelWatcher(models_consumer, topics.models, models, pool)
        # Position the watcher before reading the registry: a model published
        # in between is then seen by at least one of the two.
        await watcher.position_at_end()
        loaded = await models.load_registry(pool)
        tasks.append(asyncio.create_task(watcher.run(stop), name="models"))
        await features_consumer.start()
        handler = ScoringHandler(topics, models, pool, RollingErrors(settings.consumer_error_window))
        loop = BatchLoop(
            features_consumer,
            producer,
            handler,
            service=settings.service_name,
            deadletter_topic=topics.deadletter,
            max_records=settings.consumer_max_records,
            transient_errors=TRANSIENT_DB_ERRORS,
        )
        log.info("consumer_started", streams=list(streams), group=settings.group, models_loaded=loaded)
        tasks.append(asyncio.create_task(loop.run(stop), name="scoring"))
        # Without the watcher, models would silently go stale: either task
        # ending ends the service.
        await run_tasks(tasks, stop)
    finally:
        stop.set()
        await finish_tasks(tasks, grace=10.0)
        await features_consumer.stop()
        await models_consumer.stop()
        await producer.stop()
        await pool.close()

