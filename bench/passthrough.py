"""Baseline 1, the ceiling: bare aiokafka pass-through (consume a batch,
produce it unchanged to another topic, commit), as its own process.

    python -m bench.passthrough BOOTSTRAP GROUP SOURCE_PREFIX SINK_PREFIX COUNT

Reads the raw topics of SOURCE_PREFIX and copies each record to the
features topic of its stream under SINK_PREFIX (the normalizer's shape:
raw.<stream> in, features.<stream> out), with the producer settings and the
batched send (shared.kafka.send) every Fluxo service uses: the ceiling is
the cost of moving the bytes the way Fluxo moves them, minus all handling. Exits once COUNT messages are through; the caller reads
the rate from the sink's record timestamps, the same way it reads the
pipeline's from its rows.
"""

from __future__ import annotations

import asyncio
import sys

from shared.kafka import Outgoing, make_consumer, make_producer
from shared.kafka.send import send_batched
from shared.streams import builtin_streams
from shared.topics import Topics


async def main(bootstrap: str, group: str, source_prefix: str, sink_prefix: str, count: int) -> None:
    source, sink = Topics(source_prefix), Topics(sink_prefix)
    routes = {source.raw(stream): sink.features(stream) for stream in (spec.name for spec in builtin_streams())}
    consumer = make_consumer(bootstrap, group, list(routes), "bench-passthrough")
    producer = make_producer(bootstrap, "bench-passthrough")
    await consumer.start()
    await producer.start()
    done = 0
    try:
        while done < count:
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            outgoing = [Outgoing(routes[tp.topic], r.value, r.key) for tp, records in batches.items() for r in records]
            await send_batched(producer, outgoing)
            if batches:
                await consumer.commit({tp: records[-1].offset + 1 for tp, records in batches.items()})
            done += len(outgoing)
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    bootstrap, group, source_prefix, sink_prefix, count = sys.argv[1:]
    asyncio.run(main(bootstrap, group, source_prefix, sink_prefix, int(count)))
