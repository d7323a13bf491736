"""BatchLoop against non-transient delivery failures on a real broker: a dead
letter over the broker's size limit, an output over it, a topic that cannot
exist. None of them may end the loop (a restarted service would read the
same batch and end again: the stream would stop)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from shared import metrics, retry
from shared.kafka import BatchLoop, HandlerResult, Outgoing, Rejected, make_consumer
from shared.kafka.deadletter import ERROR, ORIGIN_OFFSET, TRUNCATED, read_headers
from shared.kafka.send import MAX_MESSAGE_BYTES
from shared.topics import Topics
from tests.helpers import wait_for
from tests.live import read_all
# The loop tests' fixtures: a fresh topic set and a producer per test.
from tests.shared.test_kafka_loop import committed, drain, handle_until_committed, produce, producer, topics  # noqa: F401

pytestmark = pytest.mark.asyncio


def reject_all(reason: str) -> Callable:
    async def handle(records: list[ConsumerRecord]) -> HandlerResult:
        return HandlerResult(rejected=[Rejected(record, reason) for record in records])

    return handle


async def test_a_dead_letter_over_the_broker_limit_is_cut_to_fit_and_the_stream_goes_on(
    kafka_bootstrap: str, topics: Topics, producer: AIOKafkaProducer, unique_name: Callable[..., str]
) -> None:
    """The largest value the broker accepts on the raw topic, rejected: its
    dead letter (value + origin and reason headers) is over the limit. Before,
    the broker refused it and the loop raised out of ``run``."""
    source = topics.raw("energy")
    big = b"x" * (MAX_MESSAGE_BYTES + 20_000)  # under the broker's 1048588, over the loop's limit once headers are on
    await producer.send_and_wait(source, big, key=b"k")
    await produce(producer, source, [b"small"])
    reason = "too big to be anything: " + "r" * 100
    await handle_until_committed(kafka_bootstrap, producer, reject_all(reason), topics, unique_name("g"), 2)
    dead = await drain(kafka_bootstrap, topics.deadletter, 2)
    by_offset = {read_headers(r.headers)[ORIGIN_OFFSET]: r for r in dead}
    cut, whole = by_offset["0"], by_offset["1"]
    headers = read_headers(cut.headers)
    assert headers[ERROR] == reason, "the reason must survive the cut whole"
    assert headers[TRUNCATED] == str(len(big))
    assert 0 < len(cut.value) < len(big) and big.startswith(cut.value)
    assert whole.value == b"small" and TRUNCATED not in read_headers(whole.headers)


async def test_an_output_over_the_limit_dead_letters_its_own_record_only(
    kafka_bootstrap: str, topics: Topics, producer: AIOKafkaProducer, unique_name: Callable[..., str]
) -> None:
    """A handler output the broker would refuse: the record that made it is
    dead-lettered with the reason, the others' outputs go out. Before, the
    size guard never fired (a batch builder takes any first record), the
    broker refused the batch twice and the loop raised."""
    source, sink = topics.raw("energy"), topics.features("energy")
    await produce(producer, source, [b"a", b"huge", b"b"])

    async def handle(records: list[ConsumerRecord]) -> HandlerResult:
        return HandlerResult(outputs=[
            Outgoing(sink, record.value * (2 * MAX_MESSAGE_BYTES // 4 if record.value == b"huge" else 1), record.key)
            for record in records
        ])

    await handle_until_committed(kafka_bootstrap, producer, handle, topics, unique_name("g"), 3)
    dead = await drain(kafka_bootstrap, topics.deadletter, 1)
    assert [r.value for r in dead] == [b"huge"]
    assert "message limit" in read_headers(dead[0].headers)[ERROR]
    assert sorted(r.value for r in await drain(kafka_bootstrap, sink, 2)) == [b"a", b"b"]


async def test_a_topic_that_cannot_exist_blocks_the_stream_visibly_and_it_resumes_once_fixed(
    kafka_bootstrap: str, topics: Topics, unique_name: Callable[..., str]
) -> None:
    """An output topic the broker refuses (an invalid name stands in for a
    missing topic or a refused authorization): the loop must not exit, must
    not dead-letter the good records, must say so (error log, metric, gauge),
    and must go on by itself once the cause is fixed."""
    source, sink = topics.raw("energy"), topics.features("energy")
    # Short metadata waits, so each blocked attempt fails within seconds.
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True, acks="all",
                                request_timeout_ms=2_000)
    await producer.start()
    service = unique_name("svc")
    target = {"topic": "not a valid topic name!"}

    async def handle(records: list[ConsumerRecord]) -> HandlerResult:
        return HandlerResult(outputs=[Outgoing(target["topic"], record.value, record.key) for record in records])

    consumer = make_consumer(kafka_bootstrap, unique_name("g"), [source], "test")
    await consumer.start()
    stop = asyncio.Event()
    try:
        await produce(producer, source, [orjson.dumps({"n": n}) for n in range(5)])
        loop = BatchLoop(consumer, producer, handle, service=service, deadletter_topic=topics.deadletter,
                         policy=retry.RetryPolicy(initial_s=0.05, max_s=0.2, jitter_s=0.05))
        task = asyncio.create_task(loop.run(stop))

        def blocked_retries() -> float:
            return retry.RETRIES.labels(service, "blocked", "retried")._value.get()

        await wait_for(lambda: blocked_retries() >= 2 or task.done(), 60, message="two blocked retries")
        assert not task.done(), f"the loop ended: {task.exception() if task.done() else ''}"
        assert metrics.STREAM_BLOCKED.labels(service)._value.get() == 1
        assert await committed(consumer, source) == 0, "nothing may be committed while blocked"

        target["topic"] = sink  # the operator fixes the cause
        async def all_committed() -> bool:
            return await committed(consumer, source) == 5

        await wait_for(all_committed, 60, message="5 offsets committed after the fix")
        assert metrics.STREAM_BLOCKED.labels(service)._value.get() == 0
        assert retry.RETRIES.labels(service, "batch", "recovered")._value.get() >= 1
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 15)
        finally:
            await consumer.stop()
            await producer.stop()
    assert sorted(orjson.loads(r.value)["n"] for r in await drain(kafka_bootstrap, sink, 5)) == list(range(5))
    assert await read_all(kafka_bootstrap, topics.deadletter) == [], "a good record was dead-lettered"
