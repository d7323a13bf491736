"""The generator process: one paced send loop per stream over one producer.

It generates for every declared stream with a ``simulation`` block (or those
GENERATOR_STREAMS names), or replays a CSV file into one stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterable

import structlog
from aiokafka import AIOKafkaProducer

from services.generator import metrics
from services.generator.base import Source
from services.generator.drift import DriftControl
from services.generator.messages import Emitter
from services.generator.replay import ReplaySource
from services.generator.settings import GeneratorSettings
from services.generator.simulators import simulate
from shared import metrics as shared_metrics
from shared.kafka import make_producer
from shared.kafka.admin import ensure_topics
from shared.settings import SettingsError
from shared.streams import StreamSpec, builtin_streams
from shared.streams.catalog import Catalog, StreamsWatcher
from shared.topics import Topics

log = structlog.get_logger(__name__)

# Shortest pause between batches when paced: at high rates a batch then
# holds several events instead of one send per event.
MIN_PAUSE_S = 0.005


def build_sources(settings: GeneratorSettings, declarations: Iterable[StreamSpec]) -> dict[str, Source]:
    """A source per stream to generate (or the one replayed); a stream the
    settings name that cannot be generated is a :class:`SettingsError`."""
    specs = {spec.name: spec for spec in declarations}
    replay = settings.generator_replay_stream
    if settings.generator_replay_file is not None and replay is not None:
        if replay not in specs:
            raise SettingsError(f"GENERATOR_REPLAY_STREAM={replay!r}: no such stream (streams: {', '.join(specs)})")
        return {replay: ReplaySource(settings.generator_replay_file, specs[replay])}
    simulated = [name for name, spec in specs.items() if spec.simulation is not None]
    missing = [name for name in settings.generator_streams if name not in simulated]
    if missing:
        raise SettingsError(
            f"GENERATOR_STREAMS={','.join(settings.generator_streams)!r}: no simulation declared for "
            f"{', '.join(map(repr, missing))} (simulated streams: {', '.join(simulated)})"
        )
    return {name: simulate(specs[name], settings) for name in settings.generator_streams or simulated}


async def declarations(settings: GeneratorSettings, topics: Topics) -> list[StreamSpec]:
    """The streams declared when the generator starts: the built-in files and
    every registered version on the streams topic (a stream registered later
    is generated after a restart; the generator is a demo source)."""
    catalog = Catalog(builtin_streams())
    watcher = StreamsWatcher(settings.kafka_bootstrap_servers, topics.streams, catalog, f"{settings.service_name}-streams")
    try:
        async with asyncio.timeout(30):
            await ensure_topics(settings.kafka_bootstrap_servers, topics.all(), **settings.topic_replication)
            await watcher.start()
    except Exception as error:  # noqa: BLE001 - the built-in declarations still say what can be generated
        log.warning("streams_catalog_unavailable", error=f"{type(error).__name__}: {error}")
    finally:
        await watcher.stop()
    return catalog.active()


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def pump(
    emitter: Emitter,
    producer: AIOKafkaProducer,
    topic: str,
    stop: asyncio.Event,
    *,
    rate: float,
    count: int | None,
    batch_size: int,
    service: str,
) -> int:
    """Send ``emitter``'s events at ``rate`` per second until ``count``, the end
    of a finite source, or ``stop``; returns how many were acknowledged."""
    clock = asyncio.get_running_loop().time
    started = clock()
    sent = 0
    while not stop.is_set():
        want = batch_size if count is None else min(batch_size, count - sent)
        if want <= 0:
            break
        if rate > 0:
            elapsed = clock() - started
            due = int(elapsed * rate) - sent
            if due <= 0:
                await _pause(stop, max((sent + 1) / rate - elapsed, MIN_PAUSE_S))
                continue
            if due > rate:
                # More than a second behind (a slow broker): drop the backlog
                # instead of bursting to catch up.
                started = clock() - sent / rate
            want = min(want, due)
        valid_before, invalid_before = emitter.valid, sum(emitter.invalid.values())
        messages = emitter.batch(want)
        if not messages:
            break
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
        sent += len(messages)
        shared_metrics.EVENTS_OUT.labels(service, topic).inc(len(messages))
        metrics.GENERATED.labels(emitter.stream, "valid").inc(emitter.valid - valid_before)
        metrics.GENERATED.labels(emitter.stream, "invalid").inc(sum(emitter.invalid.values()) - invalid_before)
    return sent


async def _drift_later(drift: DriftControl, delay: float, stop: asyncio.Event) -> None:
    await _pause(stop, delay)
    if not stop.is_set():
        drift.set(True, reason="GENERATOR_DRIFT_AT")


async def run(settings: GeneratorSettings, stop: asyncio.Event) -> None:
    topics = Topics(settings.topic_prefix)
    sources = build_sources(settings, await declarations(settings, topics))
    await ensure_topics(settings.kafka_bootstrap_servers, topics.all(sources), **settings.topic_replication)
    replaying = settings.generator_replay_file is not None
    emitters = {
        name: Emitter(
            source,
            seed=settings.generator_seed,
            invalid_rate=settings.generator_invalid_rate,
            origin="replay" if replaying else "generator",
        )
        for name, source in sources.items()
    }
    drift = DriftControl(sources, filter(settings.drifts, sources), settings.generator_drift_magnitude)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, drift.toggle)
    producer = make_producer(settings.kafka_bootstrap_servers, settings.service_name)
    drift_task: asyncio.Task[None] | None = None
    try:
        await producer.start()
        if settings.generator_drift_at is not None:
            drift_task = asyncio.create_task(_drift_later(drift, settings.generator_drift_at, stop))
        log.info(
            "generator_started",
            streams=list(emitters),
            rate=settings.generator_rate,
            count=settings.generator_count,
            replay=str(settings.generator_replay_file) if replaying else None,
        )
        async with asyncio.TaskGroup() as group:
            pumps = {
                name: group.create_task(
                    pump(
                        emitter,
                        producer,
                        topics.raw(name),
                        stop,
                        rate=settings.generator_rate,
                        count=settings.generator_count,
                        batch_size=settings.generator_batch_size,
                        service=settings.service_name,
                    )
                )
                for name, emitter in emitters.items()
            }
        log.info(
            "generator_finished",
            sent={name: task.result() for name, task in pumps.items()},
            invalid={name: dict(emitter.invalid) for name, emitter in emitters.items()},
        )
    finally:
        if drift_task is not None:
            drift_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drift_task
        loop.remove_signal_handler(signal.SIGUSR1)
        # stop() flushes anything still buffered before closing.
        await producer.stop()
        for source in sources.values():
            if isinstance(source, ReplaySource):
                source.close()
