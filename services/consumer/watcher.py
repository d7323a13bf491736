"""Follows the compacted models topic and hot-swaps models as they are published.

No consumer group: every consumer replica needs every models event. The
reader starts at the end offset taken *before* the registry is read at
start-up, so a model published in between is seen by one or the other.
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from services.consumer.models import ActiveModels
from shared.events import ModelPublished
from shared.kafka.partitions import topic_partitions

log = structlog.get_logger(__name__)


class ModelWatcher:
    def __init__(self, consumer: AIOKafkaConsumer, topic: str, models: ActiveModels, db: asyncpg.Pool) -> None:
        self.consumer = consumer
        self.topic = topic
        self.models = models
        self.db = db

    async def position_at_end(self) -> None:
        partitions = await topic_partitions(self.consumer, [self.topic])
        self.consumer.assign(partitions)
        ends = await self.consumer.end_offsets(partitions)
        for tp, end in ends.items():
            self.consumer.seek(tp, end)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    await self.handle(record.value, stop)

    async def handle(self, value: bytes | None, stop: asyncio.Event) -> None:
        try:
            event = ModelPublished.model_validate_json(value or b"")
        except ValidationError as error:
            log.warning("models_event_unreadable", error=str(error)[:500])
            return
        while not stop.is_set():
            try:
                await self.models.on_published(self.db, event)
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                # The registry is unreachable: keep trying, so the newest
                # model comes into service as soon as it is back.
                log.warning("model_swap_deferred", stream=event.stream, task=event.task, exc_info=True)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
                except TimeoutError:
                    pass
