"""The consumer process: the catalog, the models in service and the scoring loop.

Streams come from the catalog and change while it runs: the features topics
of a new stream are subscribed to, an archived stream's dropped.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from services.consumer import labels as pending
from services.consumer import metrics
from services.consumer.handler import TRANSIENT_DB_ERRORS, ScoringHandler
from services.consumer.history_store import keep_retention
from services.consumer.monitoring import Monitoring
from services.consumer.rolling import RollingErrors
from services.consumer.settings import ConsumerSettings
from shared.db import apply_migrations, create_pool
from shared.kafka import BatchLoop, make_consumer, make_producer
from shared.kafka.clients import send_all
from shared.kafka.admin import ensure_topics
from shared.ml.served import ServedModels, follow_registry, open_models_consumer
from shared.service import finish_tasks, run_tasks
from shared.streams import builtin_streams
from shared.streams.catalog import Catalog, Declared, StreamsWatcher
from shared.topics import Topics

log = structlog.get_logger(__name__)


async def run(settings: ConsumerSettings, stop: asyncio.Event) -> None:
    topics = Topics(settings.topic_prefix)
    bootstrap = settings.kafka_bootstrap_servers
    catalog = Catalog(builtin_streams())
    await ensure_topics(bootstrap, topics.all(catalog.names()), **settings.topic_replication)
    watcher = StreamsWatcher(bootstrap, topics.streams, catalog, f"{settings.service_name}-streams")
    pool = await create_pool(settings.database_url, max_size=settings.consumer_db_pool_size)
    producer = make_producer(bootstrap, settings.service_name)
    models_consumer = None
    features_consumer = None
    tasks: list[asyncio.Task[None]] = []
    try:
        await apply_migrations(pool)
        await watcher.start()
        await producer.start()
        models = ServedModels(settings.service_name, settings.artifact_dir, catalog, settings.serves)
        # Position the models reader before reading the registry: a model
        # published in between is then seen by at least one of the two.
        models_consumer = await open_models_consumer(bootstrap, topics.models, f"{settings.service_name}-models")
        loaded = await models.sync(pool)

        def features_topics() -> list[str]:
            # Each stream's features, and its labels that arrive later.
            names = [name for name in catalog.names() if settings.serves(name)]
            return [topic for name in names for topic in (topics.features(name), topics.labels(name))]

        features_consumer = make_consumer(
            bootstrap, settings.group, features_topics(), settings.service_name,
            session_timeout_ms=settings.consumer_session_timeout_ms,
        )

        subscribed = set(features_topics())

        def follow(name: str, declared: Declared) -> None:
            wanted = set(features_topics())
            if wanted != subscribed:
                features_consumer.subscribe(sorted(wanted))
                subscribed.clear()
                subscribed.update(wanted)
            log.info("consumer_streams", topics=sorted(wanted), changed=name, version=declared.version)

        catalog.on_change(follow)
        await features_consumer.start()
        monitoring = Monitoring(catalog, settings.consumer_monitor_window)
        handler = ScoringHandler(topics, catalog, models, pool, RollingErrors(settings.consumer_error_window),
                                 monitoring, settings.history_retention_months)
        loop = BatchLoop(
            features_consumer,
            producer,
            handler,
            service=settings.service_name,
            deadletter_topic=topics.deadletter,
            max_records=settings.consumer_max_records,
            transient_errors=TRANSIENT_DB_ERRORS,
        )
        log.info("consumer_started", streams=catalog.names(), group=settings.group, models_loaded=loaded)
        # Without the registry follower models would silently go stale, and
        # without the streams watcher new streams would never be scored:
        # any task ending ends the service.
        tasks = [
            asyncio.create_task(loop.run(stop), name="scoring"),
            asyncio.create_task(
                follow_registry(models, models_consumer, pool, settings.model_refresh_seconds, stop), name="models"
            ),
            asyncio.create_task(watcher.run(stop), name="streams"),
            asyncio.create_task(keep_retention(pool, settings.history_retention_months,
                                               settings.history_retention_interval, stop, TRANSIENT_DB_ERRORS),
                                name="history-retention"),
            asyncio.create_task(monitoring.run(pool, producer, topics, stop), name="monitoring"),
            asyncio.create_task(expire_labels(settings, pool, producer, topics, stop), name="labels"),
        ]
        await run_tasks(tasks, stop)
    finally:
        stop.set()
        await finish_tasks(tasks, grace=10.0)
        if features_consumer is not None:
            await features_consumer.stop()
        if models_consumer is not None:
            await models_consumer.stop()
        await watcher.stop()
        await producer.stop()
        await pool.close()


async def expire_labels(settings: ConsumerSettings, pool, producer, topics: Topics, stop: asyncio.Event,  # noqa: ANN001
                        interval: float = 5.0) -> None:
    """Labels for events never scored within the bound go to the dead-letter
    topic with the reason (sent and acknowledged before they are deleted)."""
    interval = min(interval, settings.consumer_label_ttl_seconds / 2)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        try:
            async with asyncio.timeout(30):
                letters, keys = await pending.expired(pool, settings.consumer_label_ttl_seconds, topics.deadletter,
                                                      settings.service_name)
                if letters:
                    await send_all(producer, letters)
                    await pending.forget(pool, keys)
                    metrics.LABELS.labels("all", "expired").inc(len(letters))
                    log.warning("labels_expired", count=len(letters))
        except Exception as error:  # noqa: BLE001 - the next round tries again
            log.warning("label_expiry_failed", error=f"{type(error).__name__}: {error}")
