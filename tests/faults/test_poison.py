"""Poison inputs straight onto a raw topic, good events between them, with the
normalizer and the consumer running (in-process) on a real broker and
PostgreSQL: every poison one is dead-lettered with a reason header, every good
one is scored by both of its tasks, and neither service stops.

A record with a null Kafka key but a valid body is not poison: the stream's
key is its declared key field, not the Kafka key; it is scored like the rest.
The largest value is the largest the broker accepts (a value over its
message.max.bytes cannot be produced: the broker refuses it first); its dead
letter, headers added, is over the limit and is cut to fit."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from services.consumer.service import run as run_consumer
from services.consumer.settings import ConsumerSettings
from services.normalizer.service import run as run_normalizer
from services.normalizer.settings import NormalizerSettings
from shared.kafka.deadletter import ERROR, ORIGIN_OFFSET, ORIGIN_PARTITION, ORIGIN_TOPIC, TRUNCATED, read_headers
from shared.topics import Topics
from tests.faults.conftest import FIGURES
from tests.helpers import wait_for
from tests.live import Database, read_all, running
from tests.ml.factory import register
from tests.normalizer.records import energy, raw
from tests.streams import ENERGY

BIG = 1_040_000  # bytes: the largest value the broker's default message.max.bytes takes in one batch


def poison() -> dict[str, tuple[bytes, bytes | None]]:
    good = orjson.loads(raw("energy", energy()))
    text = orjson.dumps(good).decode()
    nested = b'{"event_id":"deep","stream":"energy","data":' + b'{"a":' * 5000 + b"1" + b"}" * 5001
    return {
        "invalid JSON": (b"{not json", b"k"),
        "empty value": (b"", b"k"),
        "largest accepted value": (raw("energy", energy(country="x" * BIG)), b"k"),
        "JSON array": (b"[1, 2, 3]", b"k"),
        "JSON number": (b"42", b"k"),
        "NaN literal": (text.replace('"renewables_share_energy":70.0', '"renewables_share_energy":NaN').encode(), b"k"),
        "Infinity literal": (text.replace('"fossil_share_energy":25.0', '"fossil_share_energy":Infinity').encode(), b"k"),
        "wrong type": (raw("energy", energy(renewables_share_energy="high")), b"k"),
        "missing field": (raw("energy", energy(renewables_share_energy=...)), b"k"),
        "out of range": (raw("energy", energy(fossil_share_energy=250.0)), b"k"),
        "wrong stream": (orjson.dumps({**good, "event_id": "wrong-stream", "stream": "pressure"}), b"k"),
        "deep nesting": (nested, b"k"),
        "null key, not JSON": (b"\x00\x01binary", None),
        "NUL in a string field": (raw("energy", energy(country="Nor\x00way")), b"k"),
        "NUL in the event id": (raw("energy", energy(), event_id="id-\x00-1"), b"k"),
        "no data object": (orjson.dumps({"event_id": "nodata", "stream": "energy"}), b"k"),
    }


async def test_poison_inputs_are_dead_lettered_with_reasons_and_good_events_all_scored(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    pool = database.pool
    await register(pool, tmp_path, ENERGY, "carbon")
    await register(pool, tmp_path, ENERGY, "cluster")
    common = {"kafka_bootstrap_servers": kafka_bootstrap, "topic_prefix": topics.prefix, "log_json": False}
    normalizer = NormalizerSettings(**common, normalizer_group=f"{topics.prefix}normalizer")
    consumer = ConsumerSettings(**common, database_url=database.dsn, artifact_dir=tmp_path,
                                consumer_group=f"{topics.prefix}consumer")
    bad = poison()
    source = topics.raw("energy")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True, acks="all",
                                max_request_size=1_048_576)
    await producer.start()
    sent_poison: dict[tuple[int, int], str] = {}
    good_ids: list[str] = []
    began = time.monotonic()
    try:
        for i, (name, (value, key)) in enumerate(bad.items()):
            good = raw("energy", energy(country=f"Country-{i}"))
            good_ids.append(orjson.loads(good)["event_id"])
            await producer.send_and_wait(source, good, key=f"Country-{i}".encode())
            meta = await producer.send_and_wait(source, value, key=key)
            sent_poison[(meta.partition, meta.offset)] = name
        # A good event with a null Kafka key: scored (its key is its country).
        nullkey = raw("energy", energy(country="Keyless"))
        good_ids.append(orjson.loads(nullkey)["event_id"])
        await producer.send_and_wait(source, nullkey, key=None)
    finally:
        await producer.stop()

    async with running(partial(run_normalizer, normalizer)), running(partial(run_consumer, consumer)):
        async def settled():
            dead = await read_all(kafka_bootstrap, topics.deadletter)
            scored = await pool.fetchval(
                "SELECT count(*) FROM predictions WHERE event_id = ANY($1::text[]) AND status = 'scored'", good_ids)
            return dead if len(dead) >= len(bad) and scored >= 2 * len(good_ids) else None

        dead = await wait_for(settled, 120, interval=0.5, message="poison not all dead-lettered or good events unscored")
    seconds = time.monotonic() - began

    by_origin = {(int(read_headers(r.headers)[ORIGIN_PARTITION]), int(read_headers(r.headers)[ORIGIN_OFFSET])): r
                 for r in dead if read_headers(r.headers)[ORIGIN_TOPIC] == source}
    assert len(dead) == len(bad), f"{len(dead)} dead letters for {len(bad)} poison inputs"
    assert set(by_origin) == set(sent_poison), "a dead letter that is not a poison input, or one missing"
    reasons = {sent_poison[origin]: read_headers(r.headers)[ERROR] for origin, r in by_origin.items()}
    assert all(reasons.values()), f"a dead letter without a reason: {reasons}"
    assert "invalid JSON" in reasons["invalid JSON"] and "invalid JSON" in reasons["NaN literal"]
    assert reasons["empty value"] == "empty message"
    assert "expected a JSON object, got array" in reasons["JSON array"]
    assert "control character" in reasons["NUL in a string field"]
    assert "control character" in reasons["NUL in the event id"]
    assert "stream:" in reasons["wrong stream"]
    largest = by_origin[next(o for o, n in sent_poison.items() if n == "largest accepted value")]
    assert int(read_headers(largest.headers)[TRUNCATED]) > BIG, "the largest dead letter was not cut to fit"
    rows = await pool.fetch("SELECT event_id, task FROM predictions WHERE status = 'scored'")
    scored = {(r["event_id"], r["task"]) for r in rows}
    missing = [(e, t) for e in good_ids for t in ("carbon", "cluster") if (e, t) not in scored]
    assert missing == [], f"good events not scored: {missing}"
    FIGURES.append(
        f"poison: {len(bad)} poison inputs dead-lettered with a reason ({len(dead)} dead letters), "
        f"{len(good_ids)} good events scored by 2 tasks ({len(good_ids) * 2 - len(missing)} rows, 0 missing), "
        f"in {seconds:.1f} s"
    )
    for name, reason in reasons.items():
        FIGURES.append(f"  poison {name!r}: {reason[:100]}")
