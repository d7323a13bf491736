"""The one consume-handle-produce-commit loop every worker runs.

Per ``getmany`` batch: the handler turns records into outputs (and may write
to PostgreSQL itself); every output and dead letter is sent and acknowledged;
only then are the batch's offsets committed. A crash anywhere before the
commit means the batch is delivered again (at-least-once), so handlers make
their effects idempotent (keys, upserts by event id).

Failures are sorted three ways:
- a record the handler rejects goes to the dead-letter topic, the rest go on;
- a transient error (broker or database unreachable) rewinds the batch and
  retries it after a back-off, dead-lettering nothing;
- any other exception means some record is poison: the batch is handled
  again one record at a time and only the records that fail are dead-lettered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaTimeoutError,
    RebalanceInProgressError,
    RequestTimedOutError,
)
from aiokafka.structs import ConsumerRecord

from shared import metrics
from shared.kafka.deadletter import dead_letter
from shared.kafka.messages import Handler, HandlerResult, Outgoing, Rejected
from shared.kafka.send import send_batched

log = structlog.get_logger(__name__)

DEFAULT_TRANSIENT: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    KafkaConnectionError,
    KafkaTimeoutError,
    RequestTimedOutError,
)


def peek_event_id(value: bytes | None) -> str | None:
    """The event id of a raw message, if it has one, for log context."""
    try:
        decoded = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return decoded.get("event_id") if isinstance(decoded, dict) else None


class BatchLoop:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        handler: Handler,
        *,
        service: str,
        deadletter_topic: str,
        max_records: int = 2000,
        poll_timeout_ms: int = 200,
        transient_errors: Sequence[type[BaseException]] = (),
        max_backoff_s: float = 10.0,
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.handler = handler
        self.service = service
        self.deadletter_topic = deadletter_topic
        self.max_records = max_records
        self.poll_timeout_ms = poll_timeout_ms
        self.transient_errors = DEFAULT_TRANSIENT + tuple(transient_errors)
        self.max_backoff_s = max_backoff_s
        self._failures = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Handle batches until ``stop`` is set; the batch in hand is finished first."""
        while not stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=self.poll_timeout_ms, max_records=self.max_records)
            if batches:
                await self.process(batches, stop)

    async def process(self, batches: dict[TopicPartition, list[ConsumerRecord]], stop: asyncio.Event) -> bool:
        """Handle one batch; returns True if it was committed (or the commit was
        refused by a rebalance), False if it was rewound for a retry."""
        records = [record for partition_records in batches.values() for record in partition_records]
        started = time.perf_counter()
        for tp, partition_records in batches.items():
            metrics.EVENTS_IN.labels(self.service, tp.topic).inc(len(partition_records))
        metrics.BATCH_SIZE.labels(self.service).observe(len(records))
        try:
            result = await self._handle(records)
            try:
                await self._deliver(result)
            except self.transient_errors:
                raise
            except Exception:
                # An effect failed on some record: apply the batch again one
                # record at a time (effects are idempotent; outputs already
                # sent may go again, as at-least-once allows).
                log.warning("batch_effects_failed_isolating_records", service=self.service, exc_info=True)
                await self._deliver(await self._isolate(records))
        except self.transient_errors as error:
            await self._rewind(batches, error, stop)
            return False
        self._failures = 0
        await self._commit(batches)
        metrics.HANDLER_LATENCY.labels(self.service).observe(time.perf_counter() - started)
        return True

    async def _handle(self, records: list[ConsumerRecord]) -> HandlerResult:
        try:
            return await self.handler(records)
        except self.transient_errors:
            raise
        except Exception:
            log.warning("batch_failed_isolating_records", service=self.service, records=len(records), exc_info=True)
        return await self._isolate(records)

    async def _isolate(self, records: list[ConsumerRecord]) -> HandlerResult:
        """Handle each record on its own, its effects included, and reject the
        ones that fail: this is how a poison record is found."""
        combined = HandlerResult()
        for record in records:
            single: HandlerResult | None = None
            try:
                single = await self.handler([record])
                for effect in single.effects:
                    await effect
                single.effects.clear()
            except self.transient_errors:
                if single is not None:
                    single.discard_effects()
                raise
            except Exception as error:  # noqa: BLE001 - any failure of one record is its own fault here
                if single is not None:
                    single.discard_effects()
                combined.rejected.append(Rejected(record, f"handler error: {type(error).__name__}: {error}"))
                continue
            combined.outputs.extend(single.outputs)
            combined.rejected.extend(single.rejected)
        return combined

    async def _deliver(self, result: HandlerResult) -> None:
        """Send outputs and dead letters and run the effects, concurrently;
        returns once all are acknowledged and done."""
        outgoing = result.outputs + [self._dead_letter(rejected) for rejected in result.rejected]
        effects, result.effects = result.effects, []
        outcomes = await asyncio.gather(self._send(outgoing), *effects, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    def _dead_letter(self, rejected: Rejected) -> Outgoing:
        record = rejected.record
        log.warning(
            "dead_lettered",
            service=self.service,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            event_id=peek_event_id(record.value),
            reason=rejected.reason,
        )
        metrics.EVENTS_DEADLETTERED.labels(self.service, record.topic).inc()
        return dead_letter(record, rejected.reason, self.deadletter_topic, self.service)

    async def _send(self, outgoing: list[Outgoing]) -> None:
        # Durable means acknowledged by the broker (acks=all), not just buffered.
        for topic, count in (await send_batched(self.producer, outgoing)).items():
            metrics.EVENTS_OUT.labels(self.service, topic).inc(count)

    async def _commit(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        assigned = self.consumer.assignment()
        offsets = {tp: records[-1].offset + 1 for tp, records in batches.items() if tp in assigned}
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, RebalanceInProgressError) as error:
            # The partitions moved to another member, which will redeliver
            # from the last committed offset; effects are idempotent.
            metrics.COMMIT_FAILURES.labels(self.service).inc()
            log.warning("commit_refused", service=self.service, error=str(error))
            return
        # A rebalance may have taken partitions away while the commit was in
        # flight; aiokafka's highwater() asserts on an unassigned partition.
        assigned = self.consumer.assignment()
        for tp, committed in offsets.items():
            if tp not in assigned:
                continue
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                metrics.CONSUMER_LAG.labels(self.service, tp.topic, str(tp.partition)).set(
                    max(highwater - committed, 0)
                )

    async def _rewind(
        self, batches: dict[TopicPartition, list[ConsumerRecord]], error: BaseException, stop: asyncio.Event
    ) -> None:
        assigned = self.consumer.assignment()
        for tp, records in batches.items():
            if tp in assigned:
                self.consumer.seek(tp, records[0].offset)
        self._failures += 1
        backoff = min(0.25 * 2 ** (self._failures - 1), self.max_backoff_s)
        metrics.HANDLER_RETRIES.labels(self.service).inc()
        log.warning("batch_retry", service=self.service, error=repr(error), backoff_s=backoff)
        try:
            await asyncio.wait_for(stop.wait(), timeout=backoff)
        except TimeoutError:
            pass
