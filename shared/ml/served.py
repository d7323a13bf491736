"""The models in service in one process, kept in step with the registry.

One component for every process that scores (the consumer and the gateway):

- **load**: a model is loaded only from its registry row, and only if its
  model.onnx and meta.json hash to the row's sha256 and the bundle says what
  the row says (stream, task, version) and fits its task in the stream's
  declaration; nothing is unpickled;
- **swap**: a newly active model replaces the one in service whole, so a
  batch or a request never sees half a model; the champion is served, a
  shadow (when the registry names one) is scored beside it and never served;
- **resync**: the registry is re-read on every event of the compacted models
  topic and on a timer (a safety net for an event missed while the broker
  was away or a bundle refused once), so every scoring process converges on
  the registry's active models;
- **retire**: a model no longer active (or of an archived stream) leaves service.

A refused bundle is logged and counted, and the model in service stays.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer
from prometheus_client import Counter, Gauge

from shared.kafka.partitions import topic_partitions
from shared.ml import registry
from shared.ml.registry import ModelRecord
from shared.ml.serving import ServingModel
from shared.retry import Backoff, pause
from shared.streams.catalog import Catalog

log = structlog.get_logger(__name__)

Key = tuple[str, str]

SERVED_VERSION = Gauge(
    "fluxo_served_model_version", "Version of the model a process scores each task with (0: none).",
    ["service", "stream", "task"],
)
SHADOW_VERSION = Gauge(
    "fluxo_served_shadow_version", "Version of the shadow a process scores each task with beside the champion (0: none).",
    ["service", "stream", "task"],
)
MODEL_LOADS = Counter(
    "fluxo_model_loads_total", "Models put into service (loaded) or refused (sha256, missing file, misfit).",
    ["service", "stream", "task", "outcome"],
)
REGISTRY_SYNCS = Counter(
    "fluxo_model_registry_syncs_total", "Registry re-reads of the models in service, by outcome.", ["service", "outcome"]
)


class BundleRefused(ValueError):
    pass


def load_checked(artifact_dir: Path, record: ModelRecord, catalog: Catalog) -> ServingModel:
    """The bundle of ``record``, verified against it and its stream; raises on any mismatch."""
    try:
        model = ServingModel.load(artifact_dir, record.bundle_dir, record.sha256, record.id)
    except Exception as error:  # noqa: BLE001 - integrity, parse or ONNX errors all mean "refuse"
        raise BundleRefused(f"{type(error).__name__}: {error}") from error
    meta = model.meta
    if (meta.stream, meta.task, meta.version) != (record.stream, record.task, record.version):
        raise BundleRefused(
            f"bundle says {meta.stream}/{meta.task} v{meta.version}, registry row says "
            f"{record.stream}/{record.task} v{record.version}"
        )
    try:
        spec = catalog.get(record.stream)
        task = spec.task(record.task)
    except KeyError as error:
        raise BundleRefused(str(error)) from None
    if meta.kind != task.kind.value:
        raise BundleRefused(f"bundle kind {meta.kind!r} does not fit task kind {task.kind.value!r}")
    unknown = [column.name for column in meta.inputs if column.name not in spec.columns]
    if unknown:
        raise BundleRefused(f"bundle reads columns the stream does not have: {', '.join(unknown)}")
    return model


class ServedModels:
    def __init__(self, service: str, artifact_dir: Path, catalog: Catalog,
                 serves: Callable[[str], bool] = lambda _: True, *, shadows: bool = True,
                 registry_timeout: float = 30.0) -> None:
        self.service = service
        self.with_shadows = shadows  # the gateway answers with champions only and loads no shadow
        self.artifact_dir = artifact_dir
        self.catalog = catalog
        self.serves = serves
        self.registry_timeout = registry_timeout
        self._models: dict[Key, ServingModel] = {}
        self._shadows: dict[Key, ServingModel] = {}
        self._lock = asyncio.Lock()
        # Whether the last registry read succeeded: a scoring process that
        # cannot see the registry may be serving a model it no longer should.
        self.synced = False
        # Called with (stream, task, version in service; 0 when retired) after each change.
        self.on_swap: list[Callable[[str, str, int], None]] = []

    def mark_stale(self) -> None:
        """The registry could not be read just now (seen by someone else than
        ``sync``): clear ``synced`` until the next successful sync."""
        if self.synced:
            log.warning("models_unsynced", service=self.service, reason="the registry cannot be read")
        self.synced = False

    def get(self, stream: str, task: str) -> ServingModel | None:
        """The champion: the model that answers."""
        return self._models.get((stream, task))

    def shadow(self, stream: str, task: str) -> ServingModel | None:
        return self._shadows.get((stream, task))

    def snapshot(self) -> dict[Key, ServingModel]:
        """The champions to score one batch with (a swap lands in the next batch)."""
        return dict(self._models)

    def shadow_snapshot(self) -> dict[Key, ServingModel]:
        return dict(self._shadows)

    def loaded(self) -> list[ServingModel]:
        return list(self._models.values())

    async def sync(self, db: asyncpg.Pool) -> int:
        """Bring the models in service in step with the registry; returns how
        many were loaded. A registry that cannot be read raises (and clears
        ``synced``); a bundle that cannot be loaded is refused and skipped."""
        async with self._lock:
            try:
                # A hung database must not hold the lock (and the models) forever.
                async with asyncio.timeout(self.registry_timeout):
                    records = await registry.served_models(db)
            except BaseException:
                self.synced = False
                REGISTRY_SYNCS.labels(self.service, "failed").inc()
                raise
            mine = [r for r in records if r.stream in self.catalog and self.serves(r.stream)]
            champions = {(r.stream, r.task): r for r in mine if r.active}
            shadows = {(r.stream, r.task): r for r in mine if r.shadow and self.with_shadows}
            loaded = 0
            for key, record in champions.items():
                current = self._models.get(key)
                if current is not None and current.model_id == record.id:
                    continue
                if await self._install(record):
                    loaded += 1
            for key, record in shadows.items():
                current = self._shadows.get(key)
                if current is None or current.model_id != record.id:
                    model = await self._load(record)
                    if model is not None:
                        self._shadows[key] = model
                        SHADOW_VERSION.labels(self.service, *key).set(record.version)
                        log.info("shadow_in_service", stream=key[0], task=key[1], model_id=record.id,
                                 version=record.version)
            for key in set(self._shadows) - set(shadows):
                del self._shadows[key]
                SHADOW_VERSION.labels(self.service, *key).set(0)
                log.info("shadow_retired", stream=key[0], task=key[1])
            for key in set(self._models) - set(champions):
                del self._models[key]
                SERVED_VERSION.labels(self.service, *key).set(0)
                log.info("model_retired", stream=key[0], task=key[1])
                self._notify(*key, 0)
            self.synced = True
            REGISTRY_SYNCS.labels(self.service, "done").inc()
            return loaded

    async def _load(self, record: ModelRecord) -> ServingModel | None:
        try:
            return await asyncio.to_thread(load_checked, self.artifact_dir, record, self.catalog)
        except BundleRefused as error:
            MODEL_LOADS.labels(self.service, record.stream, record.task, "refused").inc()
            log.error("bundle_refused", stream=record.stream, task=record.task, model_id=record.id,
                      version=record.version, reason=str(error))
            return None

    async def _install(self, record: ModelRecord) -> bool:
        model = await self._load(record)
        if model is None:
            return False
        previous = self._models.get((record.stream, record.task))
        self._models[(record.stream, record.task)] = model
        MODEL_LOADS.labels(self.service, record.stream, record.task, "loaded").inc()
        # A refusal count that is zero, not absent, so "none refused" shows as 0.
        MODEL_LOADS.labels(self.service, record.stream, record.task, "refused")
        if self.with_shadows:  # 0 (no shadow) rather than absent
            SHADOW_VERSION.labels(self.service, record.stream, record.task)
        SERVED_VERSION.labels(self.service, record.stream, record.task).set(record.version)
        log.info("model_in_service", stream=record.stream, task=record.task, model_id=record.id,
                 version=record.version, previous_version=previous.version if previous else None,
                 fast_path=model.nearest is not None)
        self._notify(record.stream, record.task, record.version)
        return True

    def _notify(self, stream: str, task: str, version: int) -> None:
        for callback in self.on_swap:
            callback(stream, task, version)


async def open_models_consumer(bootstrap_servers: str, topic: str, client_id: str) -> AIOKafkaConsumer:
    """A group-less consumer positioned at the end of the models topic.

    Position it before the registry is first read: an event published after
    that read is then always seen.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="latest",
        request_timeout_ms=15_000,
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            partitions = await topic_partitions(consumer, [topic])
            consumer.assign(partitions)
            for tp, end in (await consumer.end_offsets(partitions)).items():
                consumer.seek(tp, end)
    except BaseException:
        await consumer.stop()
        raise
    return consumer


async def follow_registry(
    served: ServedModels,
    consumer: AIOKafkaConsumer,
    db: asyncpg.Pool,
    refresh_seconds: float,
    stop: asyncio.Event,
) -> None:
    """Resync on every models event and every ``refresh_seconds``; a failure
    (broker or database away) keeps the models in hand and retries."""
    loop = asyncio.get_running_loop()
    next_refresh = loop.time() + refresh_seconds
    backoff = Backoff(served.service, "model_sync")
    while not stop.is_set():
        try:
            batches = await consumer.getmany(timeout_ms=500)
            if batches or loop.time() >= next_refresh or not served.synced:
                if batches:
                    log.info("models_event", events=sum(len(b) for b in batches.values()))
                await served.sync(db)
                next_refresh = loop.time() + refresh_seconds
            backoff.succeeded()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - this task must outlive any one failure
            await pause(stop, min(backoff.failed(error), refresh_seconds))
