"""Baseline 1, the ceiling: bare aiokafka pass-through (consume a batch,
produce it unchanged to another topic, commit), as its own process.

    python -m bench.passthrough BOOTSTRAP GROUP SINK COUNT SOURCE [SOURCE...]

Exits once COUNT messages are through; the caller reads the rate from the
sink's record timestamps, the same way it reads the pipeline's.
"""

from __future__ import annotations

import asyncio
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def main(bootstrap: str, group: str, sink: str, count: int, sources: list[str]) -> None:
    consumer = AIOKafkaConsumer(*sources, bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
                                linger_ms=5, max_batch_size=512 * 1024)
    await consumer.start()
    await producer.start()
    done = 0
    try:
        while done < count:
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            futures = [await producer.send(sink, r.value, key=r.key) for records in batches.values() for r in records]
            await asyncio.gather(*futures)
            if batches:
                await consumer.commit({tp: records[-1].offset + 1 for tp, records in batches.items()})
            done += len(futures)
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    bootstrap, group, sink, count, *sources = sys.argv[1:]
    asyncio.run(main(bootstrap, group, sink, int(count), sources))
