"""Reading fixed ranges of partitions, outside any consumer group: a
compacted topic to its end (the latest value per key), or the records a
restarted service must see again before it joins the stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from shared.kafka.partitions import topic_partitions


async def read_ranges(
    bootstrap: str,
    ranges: dict[TopicPartition, tuple[int, int]],
    client_id: str,
    *,
    timeout: float,
    max_records: int = 2000,
) -> AsyncIterator[list[ConsumerRecord]]:
    """The records of each partition from ``start`` (inclusive; the log start
    if that was deleted) to ``end`` (exclusive), in batches, each partition's
    in order. Raises TimeoutError past ``timeout`` seconds in all."""
    todo = {tp: end for tp, (start, end) in ranges.items() if end > start}
    if not todo:
        return
    deadline = asyncio.get_running_loop().time() + timeout
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, client_id=client_id, group_id=None,
        enable_auto_commit=False, auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        consumer.assign(list(todo))
        for tp in todo:
            consumer.seek(tp, ranges[tp][0])
        while todo:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"reading {sorted(map(str, todo))} took over {timeout} s")
            batches = await asyncio.wait_for(
                consumer.getmany(*todo, timeout_ms=int(min(left, 0.5) * 1000), max_records=max_records), left
            )
            records = [record for tp, got in batches.items() for record in got if record.offset < todo[tp]]
            for tp in list(todo):
                # Positions pass offsets that hold no record (transaction
                # markers, compacted away), so the end is a position.
                if await consumer.position(tp) >= todo[tp]:
                    del todo[tp]
            if records:
                yield records
    finally:
        await consumer.stop()


async def read_latest(bootstrap: str, topic: str, client_id: str, *, timeout: float) -> dict[bytes, ConsumerRecord]:
    """The newest record per key of a compacted topic (which must exist), up
    to its end when asked; a key whose newest record is a tombstone is left out."""
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, client_id=client_id, group_id=None)
    await probe.start()
    try:
        async with asyncio.timeout(timeout):
            partitions = await topic_partitions(probe, [topic])
            starts = await probe.beginning_offsets(partitions)
            ends = await probe.end_offsets(partitions)
    finally:
        await probe.stop()
    latest: dict[bytes, ConsumerRecord] = {}
    ranges = {tp: (starts[tp], ends[tp]) for tp in partitions}
    async for records in read_ranges(bootstrap, ranges, client_id, timeout=timeout):
        for record in records:
            if record.value is None:
                latest.pop(record.key or b"", None)
            else:
                latest[record.key or b""] = record
    return latest
