"""The generator (as a process) and the normalizer (in-process) on a real
broker, fresh topics per test: every raw event becomes exactly one features
event or one dead letter, scaler snapshots appear, offsets are committed and
the normalizer stops cleanly."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable

import orjson

from services.normalizer.service import run
from services.normalizer.settings import NormalizerSettings
from shared.events import FeaturesEvent, ScalerSnapshot
from shared.kafka import deadletter
from shared.settings import load_settings
from tests.streams import STREAMS
from shared.topics import Topics
from tests.helpers import wait_for
from tests.live import read_all
from tests.normalizer.kafka_reading import committed, end_offsets, run_module

COUNT = 300


async def test_generated_events_are_normalized_or_dead_lettered(
    kafka_bootstrap: str, unique_name: Callable[..., str]
) -> None:
    prefix = unique_name("t") + "."
    group = unique_name("normalizer")
    topics = Topics(prefix)
    settings = load_settings(
        NormalizerSettings,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
        normalizer_group=group,
        scaler_publish_interval=0.5,
        log_json=False,
    )
    stop = asyncio.Event()
    normalizer = asyncio.create_task(run(settings, stop))
    try:
        code, stderr = await run_module(
            "services.generator",
            {
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "TOPIC_PREFIX": prefix,
                "GENERATOR_COUNT": str(COUNT),
                "GENERATOR_RATE": "0",
                "GENERATOR_INVALID_RATE": "0.1",
                "GENERATOR_SIM_START": "2026-01-01T00:00:00Z",
                "LOG_JSON": "false",
            },
            timeout=60,
        )
        assert code == 0, stderr

        raw = {s: await read_all(kafka_bootstrap, topics.raw(s)) for s in STREAMS}
        assert {s: len(records) for s, records in raw.items()} == {s: COUNT for s in STREAMS}

        async def settled() -> tuple[dict, list] | None:
            features = {s: await read_all(kafka_bootstrap, topics.features(s)) for s in STREAMS}
            dead = await read_all(kafka_bootstrap, topics.deadletter)
            done = sum(len(f) for f in features.values()) + len(dead)
            return (features, dead) if done >= len(STREAMS) * COUNT else None

        features, dead = await wait_for(settled, timeout=45, interval=0.5, message="normalizer output incomplete")
    except BaseException:
        stop.set()
        await asyncio.wait_for(normalizer, 30)
        raise

    # Each raw event has exactly one outcome: a features event with its
    # event_id, or a dead letter naming its exact origin.
    dead_by_origin: dict[tuple[str, int, int], dict[str, str]] = {}
    for letter in dead:
        headers = deadletter.read_headers(letter.headers)
        origin = (
            headers[deadletter.ORIGIN_TOPIC],
            int(headers[deadletter.ORIGIN_PARTITION]),
            int(headers[deadletter.ORIGIN_OFFSET]),
        )
        assert origin not in dead_by_origin
        assert headers[deadletter.ERROR] and headers[deadletter.SERVICE] == "normalizer"
        dead_by_origin[origin] = {"reason": headers[deadletter.ERROR], "value": letter.value}
    for stream in STREAMS:
        events = [FeaturesEvent.model_validate_json(r.value) for r in features[stream]]
        ids = Counter(e.event_id for e in events)
        assert max(ids.values()) == 1
        dead_here = 0
        for message in raw[stream]:
            letter = dead_by_origin.get((message.topic, message.partition, message.offset))
            if letter is not None:
                dead_here += 1
                assert letter["value"] == message.value  # the original bytes
                continue
            event_id = orjson.loads(message.value)["event_id"]
            assert ids[event_id] == 1, f"{stream} event {event_id} has no features event"
        assert 0 < dead_here < COUNT * 0.25
        assert dead_here + len(events) == COUNT
        assert all(e.stream == stream and set(STREAMS[stream].scaled_features) <= set(e.features) for e in events)
        # Message key = the record's key, so a sensor's readings stay in order.
        assert all(r.key == e.key.encode() for r, e in zip(features[stream], events))
    reasons = [letter["reason"] for letter in dead_by_origin.values()]
    assert any(r.startswith("invalid JSON") for r in reasons)
    assert any("above maximum" in r or "below minimum" in r for r in reasons)

    # Snapshots reach the features count of their stream.
    counts = {s: len(features[s]) for s in STREAMS}

    async def snapshots_caught_up() -> dict[str, ScalerSnapshot] | None:
        latest: dict[str, ScalerSnapshot] = {}
        for record in await read_all(kafka_bootstrap, topics.scalers):
            snapshot = ScalerSnapshot.model_validate_json(record.value)
            assert record.key == snapshot.stream.encode()
            latest[snapshot.stream] = snapshot
        ok = all(s in latest and latest[s].n_samples == counts[s] for s in STREAMS)
        return latest if ok else None

    latest = await wait_for(snapshots_caught_up, timeout=20, interval=0.5, message="scaler snapshots not caught up")
    for stream in STREAMS:
        versions = {e.scaler_version for e in (FeaturesEvent.model_validate_json(r.value) for r in features[stream])}
        assert latest[stream].version == max(versions)
        assert latest[stream].features == list(STREAMS[stream].scaled_features)

    stop.set()
    await asyncio.wait_for(normalizer, 30)  # returns cleanly, raising nothing

    raw_topics = [topics.raw(s) for s in STREAMS]
    assert await committed(kafka_bootstrap, group, raw_topics) == await end_offsets(kafka_bootstrap, raw_topics)


async def test_restart_resumes_scalers_from_snapshots(kafka_bootstrap: str, unique_name: Callable[..., str]) -> None:
    prefix = unique_name("t") + "."
    topics = Topics(prefix)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TOPIC_PREFIX": prefix,
        "GENERATOR_STREAMS": "people",
        "GENERATOR_COUNT": "50",
        "GENERATOR_RATE": "0",
        "LOG_JSON": "false",
    }
    settings = load_settings(
        NormalizerSettings,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
        normalizer_group=unique_name("g"),
        normalizer_streams="people",
        scaler_publish_interval=30,  # only the snapshot sent on stop counts here
        log_json=False,
    )
    versions: dict[int, list[int]] = defaultdict(list)
    event_ids: dict[int, set[str]] = defaultdict(set)
    for round_ in (1, 2):
        code, stderr = await run_module("services.generator", env, timeout=60)
        assert code == 0, stderr
        stop = asyncio.Event()
        task = asyncio.create_task(run(settings, stop))

        async def featured(expected: int = 50 * round_) -> list | None:
            records = await read_all(kafka_bootstrap, topics.features("people"))
            return records if len(records) >= expected else None

        try:
            records = await wait_for(featured, timeout=45, interval=0.5, message="features missing")
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
        seen = {event_id for ids in event_ids.values() for event_id in ids}
        for record in records:
            event = orjson.loads(record.value)
            if event["event_id"] not in seen:
                versions[round_].append(event["scaler_version"])
                event_ids[round_].add(event["event_id"])
    snapshots = [ScalerSnapshot.model_validate_json(r.value) for r in await read_all(kafka_bootstrap, topics.scalers)]
    # One snapshot state per run (sent on stop; a resend is harmless on a
    # compacted topic); the second run resumed the first's statistics and
    # version instead of starting from zero.
    assert sorted({(s.version, s.n_samples) for s in snapshots}) == [(max(versions[1]), 50), (max(versions[2]), 100)]
    assert len(versions[1]) == len(versions[2]) == 50
    assert min(versions[2]) > max(versions[1])
