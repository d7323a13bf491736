"""The gateway's models, kept in step with the registry.

Loaded at start-up from the registry's active rows, reloaded when a
ModelPublished event arrives on the models topic, and re-read on a timer as a
safety net for an event missed while the consumer was starting or the broker
was away. Readers get the current model with one dict lookup; a reload swaps
the entry whole, so a request never sees half a model.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer

from services.gateway import metrics
from services.gateway.loaded import LoadedModel, load_model
from shared.ml import registry
from shared.streams import STREAMS

log = structlog.get_logger(__name__)


class ModelCache:
    def __init__(self, artifact_dir: Path) -> None:
        self.artifact_dir = artifact_dir
        self._models: dict[tuple[str, str], LoadedModel] = {}
        self._lock = asyncio.Lock()
        self.synced = False

    def get(self, stream: str, task: str) -> LoadedModel | None:
        return self._models.get((stream, task))

    def loaded(self) -> list[LoadedModel]:
        return list(self._models.values())

    async def refresh(self, pool: asyncpg.Pool) -> None:
        """Load every active model the cache does not hold yet; drop retired ones."""
        async with self._lock:
            records = await registry.active_models(pool)
            wanted = {(r.stream, r.task): r for r in records if r.stream in STREAMS}
            for key, record in wanted.items():
                current = self._models.get(key)
                if current is not None and current.model_id == record.id:
                    continue
                try:
                    model = await asyncio.to_thread(load_model, self.artifact_dir, record)
                except Exception as error:  # noqa: BLE001 - a bad bundle must not take serving down
                    metrics.MODEL_RELOADS.labels("failed").inc()
                    log.error("model_load_failed", model_id=record.id, stream=record.stream, task=record.task,
                              error=f"{type(error).__name__}: {error}")
                    continue
                self._models[key] = model
                metrics.MODEL_RELOADS.labels("loaded").inc()
                metrics.MODEL_VERSION.labels(*key).set(model.version)
                log.info("model_loaded", model_id=record.id, stream=record.stream, task=record.task,
                         version=model.version, fast_path=model.nearest is not None)
            for key in set(self._models) - set(wanted):
                del self._models[key]
                metrics.MODEL_VERSION.labels(*key).set(0)
                log.info("model_retired", stream=key[0], task=key[1])
            self.synced = True


async def open_models_consumer(bootstrap_servers: str, topic: str, client_id: str) -> AIOKafkaConsumer:
    """A group-less consumer positioned at the end of the models topic.

    The position is fixed before the registry is first read, so an event
    published after that read is always seen.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="latest",
    )
    consumer.subscribe([topic])
    await consumer.start()
    try:
        # Without a group every partition is assigned once metadata arrives.
        async with asyncio.timeout(30):
            while not consumer.assignment():
                await asyncio.sleep(0.05)
        assigned = sorted(consumer.assignment())
        await consumer.seek_to_end(*assigned)
        for tp in assigned:
            await consumer.position(tp)
    except BaseException:
        await consumer.stop()
        raise
    return consumer


async def watch_models(
    cache: ModelCache,
    consumer: AIOKafkaConsumer,
    pool: asyncpg.Pool,
    refresh_seconds: float,
    stop: asyncio.Event,
) -> None:
    """Reload on every models event, and from the registry every ``refresh_seconds``."""
    loop = asyncio.get_running_loop()
    next_refresh = loop.time() + refresh_seconds
    while not stop.is_set():
        try:
            batches = await consumer.getmany(timeout_ms=500)
            due = loop.time() >= next_refresh
            if batches or due:
                if batches:
                    log.info("models_event", events=sum(len(b) for b in batches.values()))
                await cache.refresh(pool)
                next_refresh = loop.time() + refresh_seconds
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - this task must outlive any one failure
            # Broker or database away: keep serving the models in hand and retry.
            log.warning("model_watch_error", error=f"{type(error).__name__}: {error}")
            try:
                await asyncio.wait_for(stop.wait(), timeout=min(refresh_seconds, 2.0))
            except TimeoutError:
                pass
