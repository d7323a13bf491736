"""Collect the features events of one uploaded dataset from its stream's topic.

A bounded scan: from the upload time (if the datasets table knows it, less
a margin) or the beginning of the topic, up to the end offsets seen when the
scan starts, at most ``max_rows`` events and ``timeout`` seconds. Messages
are filtered on their bytes before decoding, since most belong to other
datasets or none.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from services.trainer.window import Entry, decode_entries, window_offsets
from shared.kafka.partitions import assign_from_start, topic_partitions

# Features events are produced after the upload is recorded; clocks may
# still disagree a little between services.
START_MARGIN = timedelta(minutes=10)


class DatasetScanError(ValueError):
    pass


def dataset_needle(dataset_id: str) -> bytes:
    """The bytes every event of the dataset contains (orjson writes no spaces)."""
    return b'"dataset_id":' + orjson.dumps(dataset_id)


async def scan_dataset(
    bootstrap: str,
    topic: str,
    dataset_id: str,
    *,
    since: datetime | None,
    max_rows: int,
    timeout: float,
    client_id: str,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(events of the dataset as dicts, where they were found)."""
    needle = dataset_needle(dataset_id)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[Entry] = []
    scanned = 0
    try:
        partitions = await topic_partitions(consumer, [topic])
        await assign_from_start(consumer, partitions)
        ends = await consumer.end_offsets(partitions)
        if since is not None:
            stamp = int((since - START_MARGIN).timestamp() * 1000)
            starts = await consumer.offsets_for_times({tp: stamp for tp in partitions})
            for tp, found_offset in starts.items():
                # None: every message is older than the upload.
                consumer.seek(tp, found_offset.offset if found_offset is not None else ends[tp])
        pending = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
        try:
            async with asyncio.timeout(timeout):
                while pending and len(found) < max_rows:
                    batches = await consumer.getmany(*pending, timeout_ms=500, max_records=10_000)
                    for tp, records in batches.items():
                        for record in records:
                            if record.offset >= ends[tp]:
                                break
                            scanned += 1
                            if record.value and needle in record.value:
                                found.append(Entry(record.partition, record.offset, record.value))
                    for tp in list(pending):
                        if await consumer.position(tp) >= ends[tp]:
                            pending.discard(tp)
        except TimeoutError:
            raise DatasetScanError(
                f"scanning {topic} for dataset {dataset_id} did not finish in {timeout:g} s ({scanned} events read)"
            ) from None
    finally:
        await consumer.stop()
    rows = [row for row in decode_entries(found[:max_rows]) if row.get("dataset_id") == dataset_id]
    where = window_offsets(topic, found[:max_rows])
    return rows, {"dataset_id": dataset_id, "scanned": scanned, **where}
