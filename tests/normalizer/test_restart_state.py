"""The normalizer's state survives SIGKILL: a normalizer process killed
mid-stream three times (and stopped cleanly at the end) gives every raw
event the rolling statistics an uninterrupted normalizer gives it, its
redelivered events included, and its scaler counts every valid event
exactly once. Real broker, fresh topics and group.

A record handled but not committed when the process died is delivered
again after the restart; it takes the same path as every record past the
committed offset (the state restored as of that offset), so the comparison
covers it whenever a kill lands there (the printed figure says how many)."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from services.generator.messages import Emitter
from services.generator.settings import GeneratorSettings
from services.generator.simulators import simulate
from services.normalizer.handler import Normalizer
from shared.events import ScalerSnapshot
from shared.streams.catalog import Catalog
from shared.topics import Topics
from tests.helpers import wait_for
from tests.live import read_all
from tests.processes import Supervised, log_tail
from tests.streams import PRESSURE

KILLS = 3
EVENTS = 4800
# The rolling statistics and what is derived from them: equal to the bit.
ROLLING = [rolling.name for rolling in PRESSURE.rolling] + [derived.name for derived in PRESSURE.derived]


def raw_messages(count: int) -> list[tuple[bytes, bytes]]:
    # Ten minutes of simulated time per reading: 4,800 readings of 6 sensors
    # span about 5.5 days, so hours close and the 30-day windows hold many.
    settings = GeneratorSettings(
        generator_seed=11, generator_sensors=6, generator_sim_start=datetime(2026, 1, 1, tzinfo=UTC),
        generator_sim_step=600.0,
    )
    return Emitter(simulate(PRESSURE, settings), seed=11, invalid_rate=0.03).batch(count)


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


async def test_killed_normalizer_resumes_its_windows_and_scaler(
    kafka_bootstrap: str, unique_name: Callable[..., str], tmp_path: Path
) -> None:
    prefix = unique_name("t") + "."
    topics = Topics(prefix)
    raw_topic = topics.raw(PRESSURE.name)
    messages = raw_messages(EVENTS)
    normalizer = Supervised("services.normalizer", {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TOPIC_PREFIX": prefix,
        "NORMALIZER_GROUP": unique_name("normalizer"),
        "NORMALIZER_STREAMS": PRESSURE.name,
        "NORMALIZER_MAX_RECORDS": "40",  # many commits, so kills land between them and inside batches
        "NORMALIZER_SESSION_TIMEOUT_MS": "6000",
        "SCALER_PUBLISH_INTERVAL": "0.3",
        "LOG_JSON": "false",
    }, tmp_path)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()

    chunk = len(messages) // (KILLS + 1)
    allowed = 0
    sent = 0

    async def trickle() -> None:
        # Paced, so that the normalizer is in the middle of a batch when it
        # is killed; each round's events wait for the round.
        nonlocal sent
        while sent < len(messages):
            if sent >= allowed:
                await asyncio.sleep(0.05)
                continue
            for key, value in messages[sent:sent + 20]:
                await producer.send(raw_topic, value, key=key)
            await producer.flush()
            sent += len(messages[sent:sent + 20])
            await asyncio.sleep(0.05)

    async def outcomes() -> int:
        features = await read_all(kafka_bootstrap, topics.features(PRESSURE.name))
        dead = await read_all(kafka_bootstrap, topics.deadletter)
        return len({orjson.loads(r.value)["event_id"] for r in features}) + len(dead)

    restarted: list[Path] = []
    sender: asyncio.Task[None] | None = None
    try:
        normalizer.start()
        await wait_for(lambda: topic_exists(kafka_bootstrap, raw_topic), timeout=60, interval=0.5,
                       message="the normalizer did not create its topics")
        sender = asyncio.create_task(trickle())
        for round_ in range(KILLS):
            # The (restarted) normalizer is at work before this round's events go.
            await wait_for(lambda: _at_least(outcomes, round_ * chunk), timeout=90,
                           interval=0.2, message=f"round {round_}: no progress\n{log_tail(normalizer.log)}")
            allowed = (round_ + 1) * chunk
            await wait_for(lambda: _at_least(outcomes, round_ * chunk + chunk // 3), timeout=90,
                           interval=0.2, message=f"round {round_}: no progress\n{log_tail(normalizer.log)}")
            assert sent < allowed, "this round's events were all sent before the kill: send them slower"
            normalizer.sigkill()
            normalizer.start()
            restarted.append(normalizer.log)
        allowed = len(messages)
        await asyncio.wait_for(sender, 120)
        await wait_for(lambda: _at_least(outcomes, len(messages)), timeout=120, interval=0.5,
                       message=f"not every raw event was normalized\n{log_tail(normalizer.log)}")
        normalizer.stop()  # clean: the final checkpoint has the last scaler state
    finally:
        if sender is not None:
            sender.cancel()
        normalizer.stop()
        await producer.stop()

    raw = await read_all(kafka_bootstrap, raw_topic)
    assert len(raw) == len(messages)
    # The uninterrupted normalizer: every raw record once, each partition in order.
    ordered = sorted(raw, key=lambda r: (r.partition, r.offset))
    reference = Normalizer(topics, Catalog([PRESSURE])).handle(
        [ConsumerRecord(r.topic, r.partition, r.offset, 0, 0, r.key, r.value, None, 0, 0, []) for r in ordered]
    )
    expected = {orjson.loads(o.value)["event_id"]: orjson.loads(o.value)["features"] for o in reference.outputs}

    features = await read_all(kafka_bootstrap, topics.features(PRESSURE.name))
    copies = Counter(orjson.loads(r.value)["event_id"] for r in features)
    assert set(copies) == set(expected)
    differing = []
    for record in features:
        event = orjson.loads(record.value)
        want = expected[event["event_id"]]
        if not all(same(event["features"].get(name), want.get(name)) for name in ROLLING):
            differing.append((event["event_id"], {n: (event["features"].get(n), want.get(n)) for n in ROLLING}))
    redelivered = sum(n - 1 for n in copies.values())
    print(f"\nnormalizer killed {normalizer.kills} times: {len(raw)} raw events, {len(features)} features events "
          f"({redelivered} redelivered), {len(differing)} with rolling statistics other than uninterrupted")
    assert not differing, f"{len(differing)} events differ, e.g. {differing[:2]}"

    restores = [line for path in restarted for line in path.read_text().splitlines()
                if "normalizer_state_restored" in line]
    assert len(restores) == KILLS, "every restart restores the state"
    assert all("keys=0" not in line for line in restores), restores

    # Counted once: the scaler's last snapshot has seen every valid event exactly once.
    snapshots = [ScalerSnapshot.model_validate_json(r.value) for r in await read_all(kafka_bootstrap, topics.scalers)]
    assert snapshots[-1].n_samples == len(expected), (snapshots[-1].n_samples, len(expected))


async def _at_least(measure: Callable, target: int) -> bool:
    return await measure() >= target


async def topic_exists(bootstrap: str, topic: str) -> bool:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return topic in await consumer.topics()
    finally:
        await consumer.stop()
