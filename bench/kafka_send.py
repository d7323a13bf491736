"""Producer throughput: one ``send()`` per message against Fluxo's batched
sending (``shared.kafka.send.send_batched``), same broker, same messages.

    python -m bench.kafka_send [--messages N]

Uses KAFKA_BOOTSTRAP_SERVERS when set, else a local broker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from contextlib import ExitStack

import orjson

from shared.kafka import make_producer
from shared.kafka.admin import ensure_topics
from shared.kafka.messages import Outgoing
from shared.kafka.send import send_batched
from shared.topics import RAW

# About the size of a features event.
VALUE = os.urandom(200).hex().encode()


async def measure(bootstrap: str, messages: int) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    plain_topic, batched_topic = f"bench-send-plain-{run}", f"bench-send-batched-{run}"
    await ensure_topics(bootstrap, [(plain_topic, RAW), (batched_topic, RAW)])
    keys = [str(i % 50).encode() for i in range(messages)]
    producer = make_producer(bootstrap, "bench-send")
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(plain_topic, VALUE, key=key) for key in keys]
        await asyncio.gather(*futures)
        plain = messages / (time.perf_counter() - started)
        started = time.perf_counter()
        await send_batched(producer, (Outgoing(batched_topic, VALUE, key) for key in keys))
        batched = messages / (time.perf_counter() - started)
    finally:
        await producer.stop()
    return {"send_per_message_msgs_per_s": round(plain), "send_batched_msgs_per_s": round(batched),
            "ratio": round(batched / plain, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=40_000)
    args = parser.parse_args()
    with ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            from shared.infra.kafka import LocalKafka

            bootstrap = stack.enter_context(LocalKafka()).bootstrap
        print(orjson.dumps(asyncio.run(measure(bootstrap, args.messages))).decode())


if __name__ == "__main__":
    main()
