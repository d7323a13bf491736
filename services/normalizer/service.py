"""The normalizer process: a thin Kafka shell around the pure handler."""

from __future__ import annotations

import asyncio
import contextlib
import gc

import structlog

from services.normalizer.handler import Normalizer
from services.normalizer.settings import NormalizerSettings
from services.normalizer.snapshots import SnapshotPublisher, read_latest_snapshots, restore_scalers
from shared.kafka import BatchLoop, make_consumer, make_producer
from shared.kafka.admin import ensure_topics
from shared.streams import get_stream
from shared.topics import Topics

log = structlog.get_logger(__name__)


def tune_gc() -> None:
    """Process-wide GC settings for the normalizer's hot path.

    A batch allocates a dozen short-lived containers per event and almost no
    reference cycles; with the default gen-0 threshold (700) the collector
    ran every few dozen events and took about 30% of handler time in
    bench/normalizer_handler.py. Objects alive after start-up are frozen out
    of collections altogether.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


async def run(settings: NormalizerSettings, stop: asyncio.Event) -> None:
    topics = Topics(settings.topic_prefix)
    bootstrap = settings.kafka_bootstrap_servers
    await ensure_topics(bootstrap, topics.all(), **settings.topic_replication)
    normalizer = Normalizer(
        topics,
        [get_stream(name) for name in settings.normalizer_streams],
        max_sensors=settings.normalizer_max_sensors,
    )
    try:
        snapshots_found = await read_latest_snapshots(bootstrap, topics.scalers, f"{settings.service_name}-restore")
    except Exception:  # noqa: BLE001 - the scalers then start afresh; events still flow
        log.warning("scaler_restore_failed", exc_info=True)
        snapshots_found = {}
    log.info("scalers_restored", streams=restore_scalers(normalizer, snapshots_found))
    publisher = SnapshotPublisher(normalizer, topics.scalers)
    producer = make_producer(bootstrap, settings.service_name)
    consumer = make_consumer(bootstrap, settings.group, normalizer.raw_topics, settings.service_name)
    snapshots: asyncio.Task[None] | None = None
    try:
        await producer.start()
        await consumer.start()
        loop = BatchLoop(
            consumer,
            producer,
            normalizer,
            service=settings.service_name,
            deadletter_topic=topics.deadletter,
            max_records=settings.normalizer_max_records,
        )
        snapshots = asyncio.create_task(publisher.run(producer, settings.scaler_publish_interval, stop))
        log.info("normalizer_started", streams=list(normalizer.streams), group=settings.group)
        await loop.run(stop)
    finally:
        stop.set()
        if snapshots is not None:
            snapshots.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await snapshots
            # The state that scaled the last events goes out before leaving,
            # so a restart resumes from it.
            try:
                await publisher.publish(producer)
            except Exception:  # noqa: BLE001 - shutting down anyway; the next start begins from the older snapshot
                log.warning("final_scaler_snapshot_failed", exc_info=True)
        await consumer.stop()
        await producer.stop()
