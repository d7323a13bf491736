"""The normalizer process: a thin Kafka shell around the pure handler.

The streams it normalizes come from the catalog (built-in declarations and
the streams topic): a stream registered while it runs is subscribed to, an
archived one dropped, with no restart.
"""

from __future__ import annotations

import asyncio
import gc

import structlog

from services.normalizer.handler import Normalizer
from services.normalizer.settings import NormalizerSettings
from services.normalizer.checkpoint import Checkpointer, read_scaler_snapshots, snapshot_states
from services.normalizer.restore import StateRestorer
from shared.kafka import BatchLoop, make_consumer, make_producer
from shared.kafka.admin import ensure_topics
from shared.service import finish_tasks, run_tasks
from shared.streams import builtin_streams
from shared.streams.catalog import Catalog, Declared, StreamsWatcher
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
    catalog = Catalog(builtin_streams())
    await ensure_topics(bootstrap, topics.all(catalog.names()), **settings.topic_replication)
    watcher = StreamsWatcher(bootstrap, topics.streams, catalog, f"{settings.service_name}-streams")
    try:
        snapshots_found = await read_scaler_snapshots(
            bootstrap, topics.scalers, f"{settings.service_name}-restore",
            timeout=settings.normalizer_restore_timeout_seconds,
        )
    except Exception:  # noqa: BLE001 - the scalers then start afresh; events still flow
        log.warning("scaler_restore_failed", exc_info=True)
        snapshots_found = {}
    producer = make_producer(bootstrap, settings.service_name)
    consumer = None
    tasks: list[asyncio.Task[None]] = []
    checkpointer: Checkpointer | None = None
    try:
        await watcher.start()
        normalizer = Normalizer(
            topics,
            catalog,
            serves=settings.serves,
            max_keys=settings.normalizer_max_keys,
            restored=snapshot_states(snapshots_found),
        )
        consumer = make_consumer(bootstrap, settings.group, (), settings.service_name,
                                 session_timeout_ms=settings.normalizer_session_timeout_ms)
        restorer = StateRestorer(
            normalizer, consumer, bootstrap, topics, settings.service_name,
            startup_scalers=snapshots_found,
            max_replay=settings.normalizer_replay_max_records,
            timeout=settings.normalizer_restore_timeout_seconds,
        )
        subscribed: set[str] = set()

        def subscribe(wanted: set[str]) -> None:
            # aiokafka refuses an empty subscription: no stream served yet (or any more).
            if wanted:
                consumer.subscribe(sorted(wanted), listener=restorer)
            elif subscribed:
                consumer.unsubscribe()
            subscribed.clear()
            subscribed.update(wanted)

        subscribe(set(normalizer.raw_topics()))

        def follow(name: str, declared: Declared) -> None:
            # A new, changed or archived stream: subscribe to what is served now.
            normalizer.stream(name)
            wanted = set(normalizer.raw_topics())
            if wanted != subscribed:
                subscribe(wanted)
            log.info("normalizer_streams", streams=list(normalizer.streams), changed=name, version=declared.version)

        catalog.on_change(follow)
        checkpointer = Checkpointer(normalizer, topics.scalers, topics.windows, settings.scaler_publish_interval)
        await producer.start()
        await consumer.start()
        loop = BatchLoop(
            consumer,
            producer,
            normalizer,
            service=settings.service_name,
            deadletter_topic=topics.deadletter,
            max_records=settings.normalizer_max_records,
            on_commit=checkpointer.committed,
        )
        tasks = [
            asyncio.create_task(loop.run(stop), name="normalize"),
            asyncio.create_task(watcher.run(stop), name="streams"),
            asyncio.create_task(checkpointer.run(producer, stop), name="checkpoints"),
        ]
        log.info("normalizer_started", streams=list(normalizer.streams), group=settings.group)
        await run_tasks(tasks, stop)
    finally:
        stop.set()
        await finish_tasks(tasks, grace=10.0)
        if checkpointer is not None:
            # The state as of the last commit goes out before leaving, so a
            # restart resumes from it with nothing to replay.
            try:
                await checkpointer.save(producer)
            except Exception:  # noqa: BLE001 - shutting down anyway; the next start replays from the older checkpoint
                log.warning("final_checkpoint_failed", exc_info=True)
        if consumer is not None:
            await consumer.stop()
        await watcher.stop()
        await producer.stop()
