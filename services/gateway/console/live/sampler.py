"""Samples Kafka every few seconds for the console: topics' end offsets
(event rates) and the worker services' consumer groups (lag, members).

Every call has a deadline; while Kafka does not answer, the sampler says so
(``kafka_up`` False, the error and when it last answered) and the console
shows it as down instead of waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from services.gateway.console.live.rates import OffsetSample, RateHistory, lag_by_topic, sum_by_topic
from shared.kafka.partitions import topic_partitions
from shared.topics import Topics

log = structlog.get_logger(__name__)

# The worker services that read in a consumer group, by the group names they
# default to (<prefix>normalizer, <prefix>consumer, <prefix>trainer-...). A
# group renamed with NORMALIZER_GROUP or CONSUMER_GROUP is not recognised,
# and the console then says it does not know.
WORKER_GROUPS = (("normalizer", False), ("consumer", False), ("trainer", True))  # (name, prefix match)
REQUEST_TIMEOUT_MS = 10_000


def worker_of(group: str, prefix: str) -> str | None:
    """The worker service a consumer group belongs to, from its name."""
    if not group.startswith(prefix):
        return None
    rest = group[len(prefix):]
    for worker, by_prefix in WORKER_GROUPS:
        if rest == worker or (by_prefix and rest.startswith(worker)):
            return worker
    return None


@dataclass(frozen=True)
class WorkerGroups:
    """A worker's consumer groups on the broker: state, members and lag per topic."""

    worker: str
    groups: tuple[str, ...]
    states: tuple[str, ...]
    members: int
    lag: dict[str, int] = field(default_factory=dict)


@dataclass
class PipelineSampler:
    bootstrap: str
    topics: Topics
    streams: Callable[[], list[str]]  # the active streams, asked at every sample
    interval: float
    timeout: float
    history: RateHistory = field(default_factory=RateHistory)
    workers: dict[str, WorkerGroups] = field(default_factory=dict)
    kafka_up: bool | None = None  # None: not asked yet
    error: str | None = None
    last_ok_at: float | None = None  # unix seconds
    _consumer: AIOKafkaConsumer | None = None
    _admin: AIOKafkaAdminClient | None = None

    def rate(self, topic: str) -> float | None:
        return self.history.rate(topic)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

    async def sample(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._sample()
        except Exception as error:  # noqa: BLE001 - any failure means "Kafka did not answer in time"
            self.kafka_up = False
            self.error = f"{type(error).__name__}: {error}"[:300] if str(error) else type(error).__name__
            log.info("console_kafka_sample_failed", error=self.error)
            await self._close_clients()  # start afresh next time: a half-started client may be stuck
        else:
            self.kafka_up = True
            self.error = None
            self.last_ok_at = time.time()

    async def _sample(self) -> None:
        consumer, admin = await self._clients()
        names = [self.topics.deadletter]
        for stream in self.streams():
            names += [self.topics.raw(stream), self.topics.features(stream), self.topics.predictions(stream)]
        existing = set(await consumer.topics())
        partitions = await topic_partitions(consumer, [name for name in names if name in existing], self.timeout)
        ends = await consumer.end_offsets(partitions) if partitions else {}
        self.history.add(OffsetSample(time.monotonic(), sum_by_topic(ends)))
        self.workers = await self._workers(admin, ends)

    async def _workers(self, admin: AIOKafkaAdminClient, ends: dict[Any, int]) -> dict[str, WorkerGroups]:
        by_worker: dict[str, list[str]] = {}
        for listed in await admin.list_consumer_groups():
            group = listed[0]
            worker = worker_of(group, self.topics.prefix)
            if worker is not None:
                by_worker.setdefault(worker, []).append(group)
        found: dict[str, WorkerGroups] = {}
        for worker, groups in sorted(by_worker.items()):
            states, members = [], 0
            for response in await admin.describe_consumer_groups(sorted(groups)):
                for described in response.to_object()["groups"]:
                    states.append(described["state"])
                    members += len(described["members"])
            lag: dict[str, int] = {}
            for group in groups:
                committed = {tp: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(group)).items()}
                for topic, behind in lag_by_topic(ends, committed).items():
                    lag[topic] = lag.get(topic, 0) + behind
            found[worker] = WorkerGroups(worker, tuple(sorted(groups)), tuple(states), members, lag)
        return found

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        if self._consumer is None or self._admin is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                client_id="gateway-console-offsets", request_timeout_ms=REQUEST_TIMEOUT_MS,
            )
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.bootstrap, client_id="gateway-console-admin", request_timeout_ms=REQUEST_TIMEOUT_MS
            )
            # Kept before starting, so a failed start is still closed.
            self._consumer, self._admin = consumer, admin
            await consumer.start()
            await admin.start()
        return self._consumer, self._admin

    async def _close_clients(self) -> None:
        consumer, admin = self._consumer, self._admin
        self._consumer = self._admin = None
        for close in (consumer.stop if consumer else None, admin.close if admin else None):
            if close is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.timeout):
                        await close()

    async def close(self) -> None:
        await self._close_clients()
