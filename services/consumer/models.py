"""The model in service for each (stream, task), and how it changes.

A bundle is loaded only from its registry row: model.onnx and meta.json
must hash to the row's sha256 (a models event names the model, the registry
vouches for it). A bundle that fails the check, or does not fit its task,
is refused, logged and counted, and the model in service stays.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from pathlib import Path

import asyncpg
import structlog

from services.consumer import metrics
from shared.events import ModelPublished
from shared.ml import registry
from shared.ml.registry import ModelRecord
from shared.ml.serving import ServingModel
from shared.streams import get_stream

log = structlog.get_logger(__name__)

Key = tuple[str, str]


class BundleRefused(ValueError):
    pass


def load_checked(artifact_dir: Path, record: ModelRecord) -> ServingModel:
    """The bundle of ``record``, verified against it; raises on any mismatch."""
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
    task = get_stream(record.stream).task(record.task)
    if meta.kind != task.kind.value:
        raise BundleRefused(f"bundle kind {meta.kind!r} does not fit task kind {task.kind.value!r}")
    unknown = [f for f in meta.features if f not in get_stream(record.stream).features]
    if unknown:
        raise BundleRefused(f"bundle needs features the stream does not have: {', '.join(unknown)}")
    return model


class ActiveModels:
    def __init__(self, artifact_dir: Path, streams: Collection[str]) -> None:
        self.artifact_dir = artifact_dir
        self.streams = frozenset(streams)
        self._models: dict[Key, ServingModel] = {}
        # Called with (stream, task, new version) after each swap.
        self.on_swap: list[Callable[[str, str, int], None]] = []
        for name in self.streams:
            for task in get_stream(name).tasks:
                metrics.MODEL_VERSION.labels(name, task.name).set(0)

    def snapshot(self) -> dict[Key, ServingModel]:
        """The models to score one batch with (a swap lands in the next batch)."""
        return dict(self._models)

    def get(self, stream: str, task: str) -> ServingModel | None:
        return self._models.get((stream, task))

    async def load_registry(self, db: asyncpg.Pool) -> int:
        loaded = 0
        for record in await registry.active_models(db):
            if record.stream in self.streams and await self.install(record):
                loaded += 1
        return loaded

    async def on_published(self, db: asyncpg.Pool, event: ModelPublished) -> bool:
        """Swap to the model an event announces, if it is active and new here."""
        if event.stream not in self.streams or not event.active:
            return False
        current = self._models.get((event.stream, event.task))
        if current is not None and current.model_id == event.model_id:
            return False
        record = await registry.get_model(db, event.model_id)
        if record is None or (record.stream, record.task) != (event.stream, event.task):
            self._refuse(event.stream, event.task, event.model_id, "no such model in the registry")
            return False
        return await self.install(record)

    async def install(self, record: ModelRecord) -> bool:
        try:
            model = await asyncio.to_thread(load_checked, self.artifact_dir, record)
        except (BundleRefused, KeyError) as error:
            self._refuse(record.stream, record.task, record.id, str(error))
            return False
        previous = self._models.get((record.stream, record.task))
        self._models[(record.stream, record.task)] = model
        metrics.MODEL_SWAPS.labels(record.stream, record.task).inc()
        metrics.MODEL_VERSION.labels(record.stream, record.task).set(record.version)
        log.info(
            "model_in_service",
            stream=record.stream,
            task=record.task,
            model_id=record.id,
            version=record.version,
            previous_version=previous.version if previous else None,
        )
        for callback in self.on_swap:
            callback(record.stream, record.task, record.version)
        return True

    def _refuse(self, stream: str, task: str, model_id: int, reason: str) -> None:
        metrics.BUNDLE_REFUSALS.labels(stream, task).inc()
        current = self._models.get((stream, task))
        log.error(
            "bundle_refused",
            stream=stream,
            task=task,
            model_id=model_id,
            reason=reason,
            kept_version=current.version if current else None,
        )
