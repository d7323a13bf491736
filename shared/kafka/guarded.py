"""A producer for request paths: an answer within a deadline, and nothing sent after it.

aiokafka's idempotent producer never expires a batch: with idempotence on,
the sender retries a batch until the broker takes it (``Sender._can_retry``
skips the expiry check when there is a transaction manager, and idempotence
brings one), and ``stop()`` waits for the accumulator to drain. A request
that stopped waiting for its acknowledgements would still be published when
the broker comes back, after its client was told it failed and sent it again.

``GuardedProducer`` wraps one idempotent producer so that a request either
has its acknowledgements within its deadline or leaves nothing behind:

- before anything is enqueued, the leader of every partition the messages go
  to must have a live connection: with the broker away the request is
  refused having enqueued nothing;
- when the acknowledgements do not all arrive in time (the broker died after
  the check, or is hung), the producer is abandoned: every batch it still
  holds is failed, its sender task cancelled and its connections closed, so
  none of those batches is ever sent. The next request starts a fresh
  producer (a new producer id).

A batch that was already on the wire when the deadline passed may or may not
have been written by the broker: that is the one outcome nobody can know,
which is why the gateway gives each record an id derived from the request's
idempotency key, and PostgreSQL writes downstream are upserts by event id.
Abandoning fails every request in flight on that producer, not only the late
one: they were all waiting on the same unreachable broker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import TopicPartition
from prometheus_client import Counter

from shared.kafka.messages import Outgoing
from shared.kafka.send import send_batched

log = structlog.get_logger(__name__)

PRODUCERS_ABANDONED = Counter(
    "fluxo_producer_abandoned_total",
    "Producers thrown away with their unsent batches because acknowledgements missed a request's deadline.",
    ["client"],
)
SENDS_REFUSED = Counter(
    "fluxo_producer_sends_refused_total",
    "Sends refused before anything was enqueued, because a partition leader could not be reached.",
    ["client"],
)


class KafkaUnavailable(KafkaConnectionError):
    """The messages were not sent and never will be (a KafkaError: callers answer 503)."""


class GuardedProducer:
    def __init__(self, factory: Callable[[], AIOKafkaProducer], name: str) -> None:
        self._factory = factory
        self.name = name
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def current(self) -> AIOKafkaProducer | None:
        """The producer in use, if one is started (for metadata checks)."""
        return self._producer

    async def start(self, timeout: float) -> None:
        await self._started(asyncio.get_running_loop().time() + timeout)

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            # A graceful stop flushes, which never ends with the broker away.
            try:
                async with asyncio.timeout(10):
                    await producer.stop()
            except TimeoutError:
                await self._abandon(producer, "stopping")
        for task in list(self._closing):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 10)

    async def send(self, messages: Iterable[Outgoing], timeout: float) -> dict[str, int]:
        """Send every message and wait for every acknowledgement, within
        ``timeout`` seconds; returns the count per topic. Raises
        :class:`KafkaUnavailable` (nothing was enqueued, or what was is
        discarded) or another KafkaError."""
        outgoing = list(messages)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        producer = await self._started(deadline)
        await self._check_leaders(producer, {m.topic for m in outgoing}, deadline)
        try:
            async with asyncio.timeout_at(deadline):
                return await send_batched(producer, outgoing)
        except TimeoutError:
            await self._abandon(producer, f"acknowledgements missed the {timeout:g} s deadline")
            raise KafkaUnavailable(
                f"Kafka did not acknowledge within {timeout:g} s; the unsent messages were discarded"
            ) from None
        except KafkaUnavailable:
            raise
        except Exception:
            # A failed send leaves the producer's state unknown: start afresh.
            await self._abandon(producer, "a send failed")
            raise

    async def reachable(self, timeout: float) -> bool:
        """Whether a broker answers a metadata request within ``timeout``."""
        try:
            producer = await self._started(asyncio.get_running_loop().time() + timeout)
            async with asyncio.timeout(timeout):
                await producer.client.fetch_all_metadata()
        except Exception:  # noqa: BLE001 - any failure means "not reachable" here
            return False
        return True

    async def _started(self, deadline: float) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is not None:
                return self._producer
            producer = self._factory()
            try:
                async with asyncio.timeout_at(deadline):
                    await producer.start()
            except BaseException as error:
                # Not started: nothing can be queued in it; close its client.
                await self._abandon(producer, "start failed", count=False)
                if isinstance(error, (TimeoutError, OSError)):
                    raise KafkaUnavailable(f"no connection to Kafka ({type(error).__name__})") from None
                raise
            self._producer = producer
            return producer

    async def _check_leaders(self, producer: AIOKafkaProducer, topics: set[str], deadline: float) -> None:
        """Refuse before enqueueing when a partition the messages may go to
        has no leader or its leader cannot be connected to."""
        client = producer.client
        try:
            async with asyncio.timeout_at(deadline):
                for topic in sorted(topics):
                    for partition in sorted(await producer.partitions_for(topic)):
                        leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
                        if leader is None or leader < 0 or not await client.ready(leader):
                            raise KafkaUnavailable(
                                f"the leader of {topic}/{partition} is unreachable; nothing was sent"
                            )
        except TimeoutError:
            SENDS_REFUSED.labels(self.name).inc()
            raise KafkaUnavailable("Kafka's metadata could not be read in time; nothing was sent") from None
        except KafkaUnavailable:
            SENDS_REFUSED.labels(self.name).inc()
            raise

    async def _abandon(self, producer: AIOKafkaProducer, reason: str, *, count: bool = True) -> None:
        """Throw ``producer`` away so that nothing it holds is ever sent."""
        if self._producer is producer:
            self._producer = None
        if count:
            PRODUCERS_ABANDONED.labels(self.name).inc()
            log.warning("producer_abandoned", client=self.name, reason=reason)
        # aiokafka internals (0.14): no public call drops queued batches.
        producer._closed = True  # stop() is now a no-op
        accumulator = producer._message_accumulator
        accumulator.fail_all(KafkaUnavailable(f"producer abandoned: {reason}"))
        sender = producer._sender
        task = sender.sender_task if sender is not None else None
        if task is not None and not task.done():
            task.cancel()
        closing = asyncio.create_task(self._close(producer, task))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        # Closing the connections ends in-flight requests at once; the rest
        # (the sender awaiting its cancelled requests) finishes in the background.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(closing), 1.0)

    @staticmethod
    async def _close(producer: AIOKafkaProducer, task: asyncio.Task[None] | None) -> None:
        with contextlib.suppress(Exception):
            await producer.client.close()
        if task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 30)
