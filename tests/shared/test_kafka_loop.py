"""The shared consume-handle-produce-commit loop against a real broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from shared.kafka import BatchLoop, HandlerResult, Outgoing, Rejected, make_consumer, make_producer
from shared.kafka.admin import ensure_topics
from shared.kafka.deadletter import ERROR, ORIGIN_OFFSET, ORIGIN_PARTITION, ORIGIN_TOPIC, read_headers
from shared.topics import DEADLETTER, RAW, Topics
from tests.helpers import wait_for

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def topics(kafka_bootstrap: str, unique_name: Callable[..., str]) -> Topics:
    topics = Topics(prefix=unique_name("loop") + ".")
    await ensure_topics(
        kafka_bootstrap, [(topics.raw("energy"), RAW), (topics.features("energy"), RAW), (topics.deadletter, DEADLETTER)]
    )
    return topics


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = make_producer(kafka_bootstrap, "test-producer")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def produce(producer: AIOKafkaProducer, topic: str, values: list[bytes]) -> None:
    # One key: all on one partition, so order (and so "the next message") is defined.
    for value in values:
        await producer.send_and_wait(topic, value, key=b"k")


async def drain(bootstrap: str, topic: str, count: int, timeout: float = 30) -> list[ConsumerRecord]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    received: list[ConsumerRecord] = []
    try:
        async def enough() -> bool:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                received.extend(records)
            return len(received) >= count

        await wait_for(enough, timeout, message=f"{count} messages on {topic}, got {len(received)}")
    finally:
        await consumer.stop()
    return received


def upper_handler(out_topic: str) -> Callable:
    async def handle(records: list[ConsumerRecord]) -> HandlerResult:
        result = HandlerResult()
        for record in records:
            try:
                body = orjson.loads(record.value)
            except orjson.JSONDecodeError as error:
                result.rejected.append(Rejected(record, f"invalid JSON: {error}"))
                continue
            body["name"] = body["name"].upper()
            result.outputs.append(Outgoing(out_topic, orjson.dumps(body), record.key))
        return result

    return handle


async def committed(consumer: AIOKafkaConsumer, topic: str) -> int:
    total = 0
    for partition in consumer.partitions_for_topic(topic) or ():
        total += await consumer.committed(TopicPartition(topic, partition)) or 0
    return total


async def handle_until_committed(
    bootstrap: str, producer: AIOKafkaProducer, handler: Callable, topics: Topics, group: str, count: int
) -> None:
    """Run a BatchLoop on ``topics.raw("energy")`` until ``count`` offsets are
    committed, then stop it cleanly (a crash of the loop fails the test)."""
    source = topics.raw("energy")
    consumer = make_consumer(bootstrap, group, [source], "test")
    await consumer.start()
    try:
        loop = BatchLoop(consumer, producer, handler, service="test", deadletter_topic=topics.deadletter)

        async def all_committed() -> bool:
            return await committed(consumer, source) == count

        await run_loop_until(loop, all_committed, message=f"{count} offsets committed")
    finally:
        await consumer.stop()


async def run_loop_until(loop: BatchLoop, condition: Callable, message: str, timeout: float = 30) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        await wait_for(condition, timeout, message=message)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)  # also re-raises anything the loop raised


async def test_round_trip_produce_consume_commit(
    kafka_bootstrap: str, topics: Topics, producer: AIOKafkaProducer, unique_name: Callable[..., str]
) -> None:
    source, sink = topics.raw("energy"), topics.features("energy")
    await produce(producer, source, [orjson.dumps({"name": f"n{i}"}) for i in range(20)])
    await handle_until_committed(kafka_bootstrap, producer, upper_handler(sink), topics, unique_name("g"), 20)
    outputs = await drain(kafka_bootstrap, sink, 20)
    assert sorted(orjson.loads(r.value)["name"] for r in outputs) == sorted(f"N{i}" for i in range(20))


async def test_poison_message_is_dead_lettered_and_the_next_one_handled(
    kafka_bootstrap: str, topics: Topics, producer: AIOKafkaProducer, unique_name: Callable[..., str]
) -> None:
    source, sink = topics.raw("energy"), topics.features("energy")
    await produce(producer, source, [orjson.dumps({"name": "before"}), b"{not json", orjson.dumps({"name": "after"})])
    await handle_until_committed(kafka_bootstrap, producer, upper_handler(sink), topics, unique_name("g"), 3)
    dead = await drain(kafka_bootstrap, topics.deadletter, 1)
    assert len(dead) == 1 and dead[0].value == b"{not json"
    headers = read_headers(dead[0].headers)
    assert headers[ORIGIN_TOPIC] == source
    assert headers[ORIGIN_OFFSET] == "1"
    assert headers[ORIGIN_PARTITION].isdigit()
    assert headers[ERROR].startswith("invalid JSON")
    names = [orjson.loads(r.value)["name"] for r in await drain(kafka_bootstrap, sink, 2)]
    assert names == ["BEFORE", "AFTER"]


async def test_handler_exception_isolates_the_poison_record(
    kafka_bootstrap: str, topics: Topics, producer: AIOKafkaProducer, unique_name: Callable[..., str]
) -> None:
    """A handler that raises (rather than rejecting) must not stop the stream."""
    source, sink = topics.raw("energy"), topics.features("energy")
    # {"name": 5} makes the handler raise AttributeError on .upper().
    await produce(producer, source, [orjson.dumps({"name": "a"}), orjson.dumps({"name": 5}), orjson.dumps({"name": "b"})])
    await handle_until_committed(kafka_bootstrap, producer, upper_handler(sink), topics, unique_name("g"), 3)
    dead = await drain(kafka_bootstrap, topics.deadletter, 1)
    assert "AttributeError" in read_headers(dead[0].headers)[ERROR]
    names = sorted(orjson.loads(r.value)["name"] for r in await drain(kafka_bootstrap, sink, 2))
    assert names == ["A", "B"]


async def test_batch_is_redelivered_when_the_consumer_stops_before_committing(
    kafka_bootstrap: str, topics: Topics, producer: AIOKafkaProducer, unique_name: Callable[..., str]
) -> None:
    source = topics.raw("energy")
    group = unique_name("g")
    await produce(producer, source, [orjson.dumps({"n": i}) for i in range(10)])
    seen_first: list[int] = []
    crash = asyncio.Event()

    async def crashing_handler(records: list[ConsumerRecord]) -> HandlerResult:
        seen_first.extend(orjson.loads(r.value)["n"] for r in records)
        crash.set()
        await asyncio.Event().wait()  # "dies" here: cancelled before returning, so never commits
        return HandlerResult()

    first = make_consumer(kafka_bootstrap, group, [source], "test-1")
    await first.start()
    loop = BatchLoop(first, producer, crashing_handler, service="test", deadletter_topic=topics.deadletter)
    task = asyncio.create_task(loop.run(asyncio.Event()))
    try:
        await asyncio.wait_for(crash.wait(), 30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await first.stop()
    assert seen_first, "the first consumer saw nothing"

    seen_again: list[int] = []

    async def recording_handler(records: list[ConsumerRecord]) -> HandlerResult:
        seen_again.extend(orjson.loads(r.value)["n"] for r in records)
        return HandlerResult()

    second = make_consumer(kafka_bootstrap, group, [source], "test-2")
    await second.start()
    try:
        loop = BatchLoop(second, producer, recording_handler, service="test", deadletter_topic=topics.deadletter)
        await run_loop_until(loop, lambda: len(seen_again) >= 10, message="10 records seen again")
    finally:
        await second.stop()
    assert set(seen_first) <= set(seen_again), "uncommitted records were not redelivered"
    assert sorted(seen_again) == list(range(10))


async def test_effects_complete_before_commit_and_a_failing_one_is_isolated(
    kafka_bootstrap: str, topics: Topics, producer: AIOKafkaProducer, unique_name: Callable[..., str]
) -> None:
    """Effects (e.g. a database write) run beside the sends; an effect that
    fails because of one record dead-letters that record only."""
    source = topics.raw("energy")
    await produce(producer, source, [orjson.dumps({"n": n}) for n in range(6)])
    written: list[int] = []

    async def write(values: list[int]) -> None:
        if 3 in values:
            raise ValueError("3 violates a constraint")
        written.extend(values)

    async def handler(records: list[ConsumerRecord]) -> HandlerResult:
        return HandlerResult(effects=[write([orjson.loads(r.value)["n"] for r in records])])

    await handle_until_committed(kafka_bootstrap, producer, handler, topics, unique_name("g"), 6)
    assert sorted(set(written)) == [0, 1, 2, 4, 5]
    dead = await drain(kafka_bootstrap, topics.deadletter, 1)
    assert orjson.loads(dead[0].value) == {"n": 3}
    assert "violates a constraint" in read_headers(dead[0].headers)[ERROR]
