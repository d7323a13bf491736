"""Collect the features events of one uploaded dataset from its stream's topic.

A bounded scan: from the upload time (if the datasets table knows it, less
a margin) or the beginning of the topic, up to the end offsets seen when the
scan starts and then, while fewer events than the upload published have
been found, on through what the normalizer writes meanwhile (at most
``wait`` seconds); at most ``max_rows`` events and ``timeout`` seconds. Messages
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


def event_id_of(value: bytes) -> str | None:
    try:
        event_id = orjson.loads(value).get("event_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return event_id if isinstance(event_id, str) else None


def latest_per_event(entries: list[Entry]) -> list[Entry]:
    """One entry per event id, the last one read (a retried upload or a
    redelivered batch puts an event on the topic more than once)."""
    by_id: dict[str, Entry] = {}
    anonymous: list[Entry] = []
    for entry in entries:
        event_id = event_id_of(entry.value)
        if event_id is None:
            anonymous.append(entry)
        else:
            by_id.pop(event_id, None)
            by_id[event_id] = entry
    return anonymous + list(by_id.values())


async def scan_dataset(
    bootstrap: str,
    topic: str,
    dataset_id: str,
    *,
    since: datetime | None,
    max_rows: int,
    timeout: float,
    client_id: str,
    expected: int | None = None,
    wait: float = 0.0,
    progress: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(events of the dataset as dicts, one per event id, and where they were found).

    ``expected``: the rows the upload published. Right after an upload the
    normalizer may not have produced them all yet: once the end offsets seen
    at the start are reached, the scan goes on reading what arrives, for at
    most ``wait`` seconds, until it has that many distinct events.
    ``progress`` (for tests) is updated with what the scan did so far.
    """
    progress = progress if progress is not None else {}
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
    ids: set[str] = set()
    scanned = 0
    waited = 0.0
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

        def take(records: Any, bound: int | None) -> None:
            nonlocal scanned
            for record in records:
                if bound is not None and record.offset >= bound:
                    break
                scanned += 1
                if record.value and needle in record.value:
                    found.append(Entry(record.partition, record.offset, record.value))
                    event_id = event_id_of(record.value)
                    if event_id is not None:
                        ids.add(event_id)

        pending = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
        try:
            async with asyncio.timeout(timeout):
                while pending and len(found) < max_rows:
                    batches = await consumer.getmany(*pending, timeout_ms=500, max_records=10_000)
                    for tp, records in batches.items():
                        take(records, ends[tp])
                    for tp in list(pending):
                        if await consumer.position(tp) >= ends[tp]:
                            pending.discard(tp)
                progress["caught_up"] = True
                loop = asyncio.get_running_loop()
                began = loop.time()
                if expected is not None and len(ids) < expected:
                    # Past the start's end offsets: what the normalizer writes now.
                    for tp in partitions:
                        consumer.seek(tp, max(await consumer.position(tp), ends[tp]))
                    while len(ids) < expected and len(found) < max_rows and loop.time() - began < wait:
                        remaining_ms = int(max(0.05, min(0.5, wait - (loop.time() - began))) * 1000)
                        for records in (await consumer.getmany(timeout_ms=remaining_ms, max_records=10_000)).values():
                            take(records, None)
                        progress["found"] = len(ids)
                waited = loop.time() - began
        except TimeoutError:
            raise DatasetScanError(
                f"scanning {topic} for dataset {dataset_id} did not finish in {timeout:g} s ({scanned} events read)"
            ) from None
    finally:
        await consumer.stop()
    kept = latest_per_event(found[:max_rows])
    rows = [row for row in decode_entries(kept) if row.get("dataset_id") == dataset_id]
    where = window_offsets(topic, kept)
    extent: dict[str, Any] = {}
    if expected is not None:
        extent = {"rows_expected": expected, "rows_found": len(ids), "complete": len(ids) >= expected,
                  "waited_s": round(waited, 1)}
    return rows, {"dataset_id": dataset_id, "scanned": scanned, **where, **extent}
