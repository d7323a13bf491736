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


class Flow:
    """Pressure readings trickled onto a fresh raw topic, released round by
    round, and what the normalizer(s) made of them."""

    def __init__(self, bootstrap: str, topics: Topics, count: int) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.messages = raw_messages(count)
        self.allowed = 0
        self.sent = 0
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
        self.sender: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await wait_for(lambda: topic_exists(self.bootstrap, self.topics.raw(PRESSURE.name)), timeout=60,
                       interval=0.5, message="the normalizer did not create its topics")
        await self.producer.start()
        self.sender = asyncio.create_task(self._trickle())

    async def stop(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
        await self.producer.stop()

    async def _trickle(self) -> None:
        # Paced, so that a normalizer is in the middle of a batch when it is
        # killed or loses a partition; each round's events wait for the round.
        topic = self.topics.raw(PRESSURE.name)
        while self.sent < len(self.messages):
            if self.sent >= self.allowed:
                await asyncio.sleep(0.05)
                continue
            chunk = self.messages[self.sent:self.sent + 20]
            for key, value in chunk:
                await self.producer.send(topic, value, key=key)
            await self.producer.flush()
            self.sent += len(chunk)
            await asyncio.sleep(0.05)

    async def outcomes(self) -> int:
        features = await read_all(self.bootstrap, self.topics.features(PRESSURE.name))
        dead = await read_all(self.bootstrap, self.topics.deadletter)
        return len({orjson.loads(r.value)["event_id"] for r in features}) + len(dead)

    async def reached(self, target: int, timeout: float, what: str) -> None:
        async def done() -> bool:
            return await self.outcomes() >= target
        await wait_for(done, timeout=timeout, interval=0.2, message=what)

    async def finish(self, what: str) -> None:
        self.allowed = len(self.messages)
        assert self.sender is not None
        await asyncio.wait_for(self.sender, 120)
        await self.reached(len(self.messages), 120, what)

    async def compare_with_uninterrupted(self, scenario: str) -> int:
        """Asserts every features event's rolling statistics are an
        uninterrupted normalizer's; returns how many valid events there were."""
        raw = await read_all(self.bootstrap, self.topics.raw(PRESSURE.name))
        assert len(raw) == len(self.messages)
        ordered = sorted(raw, key=lambda r: (r.partition, r.offset))  # each partition in order
        reference = Normalizer(self.topics, Catalog([PRESSURE])).handle(
            [ConsumerRecord(r.topic, r.partition, r.offset, 0, 0, r.key, r.value, None, 0, 0, []) for r in ordered]
        )
        expected = {orjson.loads(o.value)["event_id"]: orjson.loads(o.value)["features"] for o in reference.outputs}
        features = await read_all(self.bootstrap, self.topics.features(PRESSURE.name))
        copies = Counter(orjson.loads(r.value)["event_id"] for r in features)
        assert set(copies) == set(expected)
        differing = []
        for record in features:
            event = orjson.loads(record.value)
            want = expected[event["event_id"]]
            if not all(same(event["features"].get(name), want.get(name)) for name in ROLLING):
                differing.append((event["event_id"], {n: (event["features"].get(n), want.get(n)) for n in ROLLING}))
        redelivered = sum(n - 1 for n in copies.values())
        print(f"\n{scenario}: {len(raw)} raw events, {len(features)} features events ({redelivered} redelivered), "
              f"{len(differing)} with rolling statistics other than uninterrupted")
        assert not differing, f"{len(differing)} events differ, e.g. {differing[:2]}"
        return len(expected)


def normalizer_env(bootstrap: str, prefix: str, group: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TOPIC_PREFIX": prefix,
        "NORMALIZER_GROUP": group,
        "NORMALIZER_STREAMS": PRESSURE.name,
        "NORMALIZER_MAX_RECORDS": "40",  # many commits, so kills land between them and inside batches
        "NORMALIZER_SESSION_TIMEOUT_MS": "6000",
        "SCALER_PUBLISH_INTERVAL": "0.3",
        "LOG_JSON": "false",
    }


def restores(logs: list[Path]) -> list[str]:
    return [line for path in logs for line in path.read_text().splitlines() if "normalizer_state_restored" in line]


async def test_killed_normalizer_resumes_its_windows_and_scaler(
    kafka_bootstrap: str, unique_name: Callable[..., str], tmp_path: Path
) -> None:
    prefix = unique_name("t") + "."
    topics = Topics(prefix)
    flow = Flow(kafka_bootstrap, topics, EVENTS)
    normalizer = Supervised("services.normalizer", normalizer_env(kafka_bootstrap, prefix, unique_name("g")), tmp_path)
    chunk = EVENTS // (KILLS + 1)
    restarted: list[Path] = []
    try:
        normalizer.start()
        await flow.start()
        for round_ in range(KILLS):
            # The (restarted) normalizer is at work before this round's events go.
            await flow.reached(round_ * chunk, 90, f"round {round_}: no progress\n{log_tail(normalizer.log)}")
            flow.allowed = (round_ + 1) * chunk
            await flow.reached(round_ * chunk + chunk // 3, 90,
                               f"round {round_}: no progress\n{log_tail(normalizer.log)}")
            assert flow.sent < flow.allowed, "this round's events were all sent before the kill: send them slower"
            normalizer.sigkill()
            normalizer.start()
            restarted.append(normalizer.log)
        await flow.finish(f"not every raw event was normalized\n{log_tail(normalizer.log)}")
        normalizer.stop()  # clean: the final checkpoint has the last scaler state
    finally:
        normalizer.stop()
        await flow.stop()

    valid = await flow.compare_with_uninterrupted(f"normalizer SIGKILLed {normalizer.kills} times")
    restored = restores(restarted)
    assert len(restored) == KILLS, "every restart restores the state"
    assert all("keys=0" not in line for line in restored), restored
    # Counted once: the scaler's last snapshot has seen every valid event exactly once.
    snapshots = [ScalerSnapshot.model_validate_json(r.value) for r in await read_all(kafka_bootstrap, topics.scalers)]
    assert snapshots[-1].n_samples == valid, (snapshots[-1].n_samples, valid)


async def test_partitions_moving_between_replicas_keep_their_windows(
    kafka_bootstrap: str, unique_name: Callable[..., str], tmp_path: Path
) -> None:
    prefix = unique_name("t") + "."
    topics = Topics(prefix)
    flow = Flow(kafka_bootstrap, topics, 3600)
    env = normalizer_env(kafka_bootstrap, prefix, unique_name("g"))
    first = Supervised("services.normalizer", {**env, "SERVICE_NAME": "normalizer-a"}, tmp_path / "a")
    second = Supervised("services.normalizer", {**env, "SERVICE_NAME": "normalizer-b"}, tmp_path / "b")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    try:
        first.start()
        await flow.start()
        flow.allowed = 1200
        await flow.reached(600, 90, f"the first replica makes no progress\n{log_tail(first.log)}")
        second.start()  # a rebalance: some partitions move to it, mid-stream
        flow.allowed = 2400
        await flow.reached(1800, 90, f"no progress after the second replica joined\n{log_tail(second.log)}")
        assert flow.sent < flow.allowed
        first.sigkill()  # its partitions move to the second replica
        await flow.finish(f"not every raw event was normalized\n{log_tail(second.log)}")
    finally:
        first.stop()
        second.stop()
        await flow.stop()

    await flow.compare_with_uninterrupted("partitions moved to a second replica, then all of them when the first died")
    restored = restores([second.log])
    assert restored and all("keys=0" not in line for line in restored), restored


async def topic_exists(bootstrap: str, topic: str) -> bool:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return topic in await consumer.topics()
    finally:
        await consumer.stop()
