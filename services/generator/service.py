"""The generator process: one paced send loop per stream over one producer."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog
from aiokafka import AIOKafkaProducer

from services.generator import metrics
from services.generator.base import Source
from services.generator.drift import DriftControl
from services.generator.energy import EnergySource
from services.generator.messages import Emitter
from services.generator.people import PeopleSource
from services.generator.pressure import PressureSource
from services.generator.replay import ReplaySource
from services.generator.settings import GeneratorSettings
from shared import metrics as shared_metrics
from shared.kafka import make_producer
from shared.kafka.admin import ensure_topics
from shared.streams import get_stream
from shared.topics import Topics

log = structlog.get_logger(__name__)

# Shortest pause between batches when paced: at high rates a batch then
# holds several events instead of one send per event.
MIN_PAUSE_S = 0.005


def build_sources(settings: GeneratorSettings) -> dict[str, Source]:
    if settings.generator_replay_file is not None and settings.generator_replay_stream is not None:
        spec = get_stream(settings.generator_replay_stream)
        return {spec.name: ReplaySource(settings.generator_replay_file, spec)}
    seed = settings.generator_seed
    sources: dict[str, Source] = {}
    for name in settings.generator_streams:
        if name == "energy":
            sources[name] = EnergySource(seed, settings.generator_countries)
        elif name == "pressure":
            sources[name] = PressureSource(
                seed,
                sensors=settings.generator_sensors,
                anomaly_rate=settings.generator_anomaly_rate,
                sim_start=settings.generator_sim_start,
                sim_step=settings.generator_sim_step,
            )
        elif name == "people":
            sources[name] = PeopleSource(seed)
        else:  # pragma: no cover - settings only admit declared streams
            raise ValueError(f"no generator for stream {name!r}")
    return sources


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
    await ensure_topics(settings.kafka_bootstrap_servers, topics.all(), **settings.topic_replication)
    sources = build_sources(settings)
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
    drift = DriftControl(sources, settings.drifting_streams, settings.generator_drift_magnitude)
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
