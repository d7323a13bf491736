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
  again one record at a time and only the records that fail are dead-lettered
  (a record whose own output is larger than the message limit is one of them).

A dead letter larger than the message limit is cut to fit (the value, never
the reason; header ``fluxo.truncated`` gives the original length). If even
the isolated batch cannot be delivered for a reason waiting does not obviously
fix (a topic that does not exist, an authorization refused, the broker
refusing a size the topic's own limit forbids), the loop neither exits (a
restarted service would read the same batch and exit again) nor dead-letters
good records for what is an operator's problem: the batch is rewound and
retried with the same back-off, logged as an error each time, counted in
``fluxo_retries_total{operation="blocked"}`` and shown by the
``fluxo_stream_blocked`` gauge, until the operator fixes the cause; then the
stream resumes where it stopped and nothing is lost.

Back-offs follow shared.retry's one policy (exponential, jitter, a cap).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    CommitFailedError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaTimeoutError,
    RebalanceInProgressError,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)
from aiokafka.structs import ConsumerRecord

from shared import metrics, retry
from shared.kafka.deadletter import dead_letter, fit
from shared.kafka.messages import Handler, HandlerResult, Outgoing, Rejected
from shared.kafka.send import MAX_MESSAGE_BYTES, message_size, send_batched

log = structlog.get_logger(__name__)

DEFAULT_TRANSIENT: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    KafkaConnectionError,
    KafkaTimeoutError,
    RequestTimedOutError,
)


# Failures no record causes: isolating the batch would only apply it again
# one record at a time to fail the same way, so the batch is blocked at once.
NOT_A_RECORD_FAULT: tuple[type[BaseException], ...] = (
    UnknownTopicOrPartitionError,
    TopicAuthorizationFailedError,
    ClusterAuthorizationFailedError,
)


class Blocked(Exception):
    """The isolated batch could not be delivered for a non-transient reason."""


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
        transient: Callable[[BaseException], bool] | None = None,
        policy: retry.RetryPolicy = retry.POLICY,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        on_commit: Callable[[dict[TopicPartition, int]], None] | None = None,
    ) -> None:
        """``on_commit``: told the offsets of every successful commit (the
        next offset to read per partition): a handler with state checkpoints
        it where it agrees with them."""
        self.consumer = consumer
        self.producer = producer
        self.handler = handler
        self.service = service
        self.deadletter_topic = deadletter_topic
        self.max_records = max_records
        self.poll_timeout_ms = poll_timeout_ms
        self.transient_errors = DEFAULT_TRANSIENT + tuple(transient_errors)
        self.transient = transient
        self.policy = policy
        self.max_message_bytes = max_message_bytes
        self.on_commit = on_commit
        self._failures = 0
        retry.declare(service, "batch")
        retry.declare(service, "blocked")
        metrics.STREAM_BLOCKED.labels(service).set(0)

    def is_transient(self, error: BaseException) -> bool:
        return isinstance(error, self.transient_errors) or (self.transient is not None and self.transient(error))

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
            except Exception as error:
                if self.is_transient(error):
                    raise
                if isinstance(error, NOT_A_RECORD_FAULT):
                    raise Blocked(f"{type(error).__name__}: {error}") from error
                # An effect or a send failed on some record: apply the batch
                # again one record at a time (effects are idempotent; outputs
                # already sent may go again, as at-least-once allows).
                log.warning("batch_effects_failed_isolating_records", service=self.service, exc_info=True)
                isolated = await self._isolate(records)
                try:
                    await self._deliver(isolated)
                except Exception as undeliverable:
                    if self.is_transient(undeliverable):
                        raise
                    raise Blocked(f"{type(undeliverable).__name__}: {undeliverable}") from undeliverable
        except Exception as error:
            if not (isinstance(error, Blocked) or self.is_transient(error)):
                raise
            await self._rewind(batches, error, stop)
            return False
        if self._failures:
            retry.count(self.service, "batch", "recovered")
            log.info("batch_recovered", service=self.service, failures=self._failures)
        self._failures = 0
        metrics.STREAM_BLOCKED.labels(self.service).set(0)
        await self._commit(batches)
        metrics.HANDLER_LATENCY.labels(self.service).observe(time.perf_counter() - started)
        return True

    async def _handle(self, records: list[ConsumerRecord]) -> HandlerResult:
        try:
            return await self.handler(records)
        except Exception as error:
            if self.is_transient(error):
                raise
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
                # An output the broker would refuse is this record's fault:
                # found before its effects run, so nothing of it is applied.
                for output in single.outputs:
                    size = message_size(output)
                    if size > self.max_message_bytes:
                        raise ValueError(f"its output to {output.topic} is {size} bytes, "
                                         f"over the {self.max_message_bytes} byte message limit")
                for effect in single.effects:
                    await effect
                single.effects.clear()
            except Exception as error:  # noqa: BLE001 - any failure of one record is its own fault here
                if single is not None:
                    single.discard_effects()
                if self.is_transient(error):
                    raise
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
        return fit(dead_letter(record, rejected.reason, self.deadletter_topic, self.service), self.max_message_bytes)

    async def _send(self, outgoing: list[Outgoing]) -> None:
        # Durable means acknowledged by the broker (acks=all), not just buffered.
        for topic, count in (await send_batched(self.producer, outgoing, self.max_message_bytes)).items():
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
        if self.on_commit is not None:
            self.on_commit(offsets)
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
        backoff = self.policy.delay(self._failures)
        if isinstance(error, Blocked):
            retry.count(self.service, "blocked", "retried")
            metrics.STREAM_BLOCKED.labels(self.service).set(1)
            log.error("batch_blocked", service=self.service, error=str(error), backoff_s=round(backoff, 3),
                      failures=self._failures)
        else:
            retry.count(self.service, "batch", "retried")
            metrics.HANDLER_RETRIES.labels(self.service).inc()
            log.warning("batch_retry", service=self.service, error=repr(error), backoff_s=round(backoff, 3),
                        failures=self._failures)
        await retry.pause(stop, backoff)
