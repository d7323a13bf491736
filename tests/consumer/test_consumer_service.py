"""The consumer against a real broker and PostgreSQL: one row per event and
task, unscored streams, alerts and sensor state, idempotent redelivery, hot
swap after a forced retrain, tampered bundles, and a SIGKILL mid-stream."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

from prometheus_client import REGISTRY

from services.consumer.service import run as run_consumer
from services.consumer.settings import ConsumerSettings
from services.trainer.service import run as run_trainer
from services.trainer.settings import TrainerSettings
from shared.events import Alert, Prediction, TrainCommand
from shared.kafka import make_producer
from shared.ml import registry
from shared.ml.publish import publish_model
from shared.ml.registry import ModelRecord
from tests.streams import ENERGY, PEOPLE, PRESSURE
from shared.topics import Topics
from tests.helpers import wait_for
from tests.live import Database, committed_everything, produce, read_all, running
from tests.ml.factory import register
from tests.ml.synthetic import features_events
from tests.processes import REPO


def _settings(kafka: str, database: Database, topics: Topics, artifacts: Path, **overrides) -> ConsumerSettings:
    values = {
        "kafka_bootstrap_servers": kafka,
        "database_url": database.dsn,
        "artifact_dir": artifacts,
        "topic_prefix": topics.prefix,
        "consumer_group": f"{topics.prefix}consumer",
        "log_json": False,
    }
    return ConsumerSettings(**{**values, **overrides})


async def _count(pool, query: str, *args) -> int:
    return int(await pool.fetchval(query, *args))


def _at_least(pool, minimum: int):
    async def check() -> bool:
        return await _count(pool, "SELECT count(*) FROM predictions") >= minimum

    return check


def _count_is(pool, expected: int, query: str, *args):
    async def check() -> bool:
        return await _count(pool, query, *args) == expected

    return check


async def _publish(kafka: str, topics: Topics, record: ModelRecord) -> None:
    producer = make_producer(kafka, "test")
    await producer.start()
    try:
        await publish_model(producer, topics, record)
    finally:
        await producer.stop()


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_every_event_gets_one_row_per_task(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    pool = database.pool
    carbon = await register(pool, tmp_path, ENERGY, "carbon")
    cluster = await register(pool, tmp_path, ENERGY, "cluster")
    anomaly = await register(pool, tmp_path, PRESSURE, "anomaly", n=800)
    energy, pressure, people = features_events(ENERGY, 300, 1), features_events(PRESSURE, 300, 2), features_events(PEOPLE, 200, 3)
    for events in (energy, pressure, people):
        await produce(kafka_bootstrap, topics.features(events[0].stream), events)
    settings = _settings(kafka_bootstrap, database, topics, tmp_path)
    unscored_before = _metric("fluxo_predictions_total", stream="people", task="income", status="unscored")
    expected = 2 * len(energy) + len(pressure) + len(people)
    async with running(partial(run_consumer, settings)):
        await wait_for(lambda: _count(pool, "SELECT count(*) FROM predictions"), timeout=40, message="no predictions")
        await wait_for(
            lambda: committed_everything(kafka_bootstrap, settings.group, topics.features("energy")), timeout=40,
            message="energy offsets not committed",
        )
        await wait_for(
            _count_is(pool, expected, "SELECT count(*) FROM predictions"), timeout=40, message="rows missing"
        )
        # A redelivery (the same events again) adds no rows.
        await produce(kafka_bootstrap, topics.features("energy"), energy[:50])
        await wait_for(
            lambda: committed_everything(kafka_bootstrap, settings.group, topics.features("energy")), timeout=40,
            message="redelivered batch not handled",
        )
        swaps = _metric("fluxo_model_loads_total", service="consumer", stream="energy", task="carbon", outcome="loaded")
    assert await _count(pool, "SELECT count(*) FROM predictions") == expected
    assert await _count(pool, "SELECT count(DISTINCT (event_id, task)) FROM predictions") == expected
    rows = await pool.fetch("SELECT task, model_version, model_id, status, count(*) AS n FROM predictions GROUP BY 1, 2, 3, 4")
    assert {(r["task"], r["model_version"], r["model_id"], r["status"], r["n"]) for r in rows} == {
        ("carbon", carbon.version, carbon.id, "scored", 300),
        ("cluster", cluster.version, cluster.id, "scored", 300),
        ("anomaly", anomaly.version, anomaly.id, "scored", 300),
        ("income", 0, None, "unscored", 200),  # people has no model yet
    }
    assert _metric("fluxo_predictions_total", stream="people", task="income", status="unscored") - unscored_before >= 200
    assert swaps >= 1
    # Prediction against actual, queryable in PostgreSQL.
    errors = await pool.fetchrow("SELECT with_actual, mean_abs_error FROM model_errors WHERE task = 'carbon'")
    assert errors["with_actual"] == 300 and 0 < errors["mean_abs_error"] < 200
    accuracy = await pool.fetchval("SELECT accuracy FROM model_errors WHERE task = 'anomaly'")
    assert accuracy > 0.8
    # Alerts: one per anomalous pressure reading, in the table and on the topic.
    flagged = await _count(pool, "SELECT count(*) FROM predictions WHERE task = 'anomaly' AND prediction = 1")
    assert flagged > 0
    assert await _count(pool, "SELECT count(*) FROM alerts") == flagged
    alerts = [Alert.model_validate_json(r.value) for r in await read_all(kafka_bootstrap, topics.alerts)]
    assert len({a.event_id for a in alerts}) == flagged
    sensors = {e.context["sensor_id"] for e in pressure}
    assert await _count(pool, "SELECT count(*) FROM entity_state WHERE stream = 'pressure'") == len(sensors)
    assert await _count(
        pool, "SELECT count(*) FROM entity_state WHERE state->>'media_30d' IS NULL OR reading_at IS NULL OR area IS NULL"
    ) == 0
    # Prediction events on the predictions topics, keyed like their source.
    messages = await read_all(kafka_bootstrap, topics.predictions("people"))
    parsed = [Prediction.model_validate_json(m.value) for m in messages]
    assert {p.event_id for p in parsed} == {e.event_id for e in people}
    assert all(p.status == "unscored" and p.model_version == 0 for p in parsed)


async def test_hot_swap_after_a_forced_retrain_without_restart(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    pool = database.pool
    await produce(kafka_bootstrap, topics.features("people"), features_events(PEOPLE, 300, 1))
    trainer_settings = TrainerSettings(
        kafka_bootstrap_servers=kafka_bootstrap, database_url=database.dsn, artifact_dir=tmp_path,
        topic_prefix=topics.prefix, train_streams=("people",), train_interval=0, log_json=False,
    )
    consumer_settings = _settings(kafka_bootstrap, database, topics, tmp_path, consumer_streams=("people",))
    first = TrainCommand(stream="people", task="income", algorithm="xgboost", hyperparameters={"n_estimators": 20})
    forced = TrainCommand(stream="people", task="income", algorithm="random_forest",
                          hyperparameters={"n_estimators": 2, "max_depth": 1}, force=True)

    async def versions_of(events) -> set[int]:
        rows = await pool.fetch("SELECT model_version FROM predictions WHERE event_id = ANY($1::text[])", [e.event_id for e in events])
        return {r["model_version"] for r in rows} if len(rows) == len(events) else set()

    async with running(partial(run_trainer, trainer_settings)), running(partial(run_consumer, consumer_settings)) as consumer:
        await produce(kafka_bootstrap, topics.commands, [first], keys=["people"])
        v1 = await wait_for(lambda: registry.active_model(pool, "people", "income"), timeout=40, message="no model")
        batch_one = features_events(PEOPLE, 100, 2)
        await produce(kafka_bootstrap, topics.features("people"), batch_one)
        assert await wait_for(lambda: versions_of(batch_one), timeout=40, message="batch one not scored") == {v1.version}
        await produce(kafka_bootstrap, topics.commands, [forced], keys=["people"])
        v2 = await wait_for(
            lambda: _newer_active(pool, v1.version), timeout=40, message="forced retrain did not activate"
        )
        # The consumer swaps on the models event; events after it are scored by the new version.
        await wait_for(
            lambda: _metric("fluxo_served_model_version", service="consumer", stream="people", task="income") == v2.version,
            timeout=30, message="consumer did not swap",
        )
        batch_two = features_events(PEOPLE, 100, 3)
        await produce(kafka_bootstrap, topics.features("people"), batch_two)
        assert await wait_for(lambda: versions_of(batch_two), timeout=40, message="batch two not scored") == {v2.version}
        # Batch one delivered again after the swap: scored by v2, but the
        # prediction that was served (v1's) stays the only one.
        scored = _metric("fluxo_predictions_total", stream="people", task="income", status="scored")
        await produce(kafka_bootstrap, topics.features("people"), batch_one)
        await wait_for(lambda: _metric("fluxo_predictions_total", stream="people", task="income", status="scored")
                       >= scored + len(batch_one), timeout=40, message="redelivered batch one not handled")
        assert await versions_of(batch_one) == {v1.version}
        assert not consumer.done()
    run = await registry.get_run(pool, forced.run_id)
    assert run.decision == "forced" and run.candidate_score < run.active_score
    ids = await pool.fetch("SELECT DISTINCT model_id FROM predictions WHERE model_version = $1", v2.version)
    assert [r["model_id"] for r in ids] == [v2.id]


async def _newer_active(pool, version: int) -> ModelRecord | None:
    active = await registry.active_model(pool, "people", "income")
    return active if active is not None and active.version > version else None


async def test_tampered_bundles_are_refused(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    pool = database.pool
    # Tampered before the consumer starts: the registry's active model is refused at load.
    first = await register(pool, tmp_path, PEOPLE, "income")
    (tmp_path / first.bundle_dir / "model.onnx").write_bytes(b"not the registered graph")
    settings = _settings(kafka_bootstrap, database, topics, tmp_path, consumer_streams=("people",))
    refusals = partial(_metric, "fluxo_model_loads_total", service="consumer", stream="people", task="income",
                       outcome="refused")
    before = refusals()
    async with running(partial(run_consumer, settings)):
        batch = features_events(PEOPLE, 50, 1)
        await produce(kafka_bootstrap, topics.features("people"), batch)
        await wait_for(_count_is(pool, 50, "SELECT count(*) FROM predictions"), timeout=40, message="batch")
        assert await _count(pool, "SELECT count(*) FROM predictions WHERE status = 'unscored'") == 50
        assert refusals() == before + 1
        # A good model is published and swapped in.
        # The served-version gauge is process-wide and an earlier test may
        # have left it at this version: wait for this consumer's own load.
        loads = partial(_metric, "fluxo_model_loads_total", service="consumer", stream="people", task="income",
                        outcome="loaded")
        loaded_before = loads()
        good = await register(pool, tmp_path, PEOPLE, "income")
        await _publish(kafka_bootstrap, topics, good)
        await wait_for(
            lambda: loads() > loaded_before
            and _metric("fluxo_served_model_version", service="consumer", stream="people", task="income") == good.version,
            timeout=30, message="good model not swapped in",
        )
        # Tampered after registration, before the consumer loads it: refused,
        # and the good model stays in service.
        bad = await register(pool, tmp_path, PEOPLE, "income")
        onnx = tmp_path / bad.bundle_dir / "model.onnx"
        data = bytearray(onnx.read_bytes())
        data[len(data) // 2] ^= 0x01
        onnx.write_bytes(bytes(data))
        await _publish(kafka_bootstrap, topics, bad)
        # Refused at every registry re-read while it stays the active row.
        await wait_for(lambda: refusals() >= before + 2, timeout=30, message="tampered bundle not refused")
        later = features_events(PEOPLE, 50, 2)
        await produce(kafka_bootstrap, topics.features("people"), later)
        await wait_for(
            _count_is(pool, 50, "SELECT count(*) FROM predictions WHERE event_id = ANY($1::text[])", [e.event_id for e in later]),
            timeout=40, message="later batch",
        )
    versions = await pool.fetch(
        "SELECT DISTINCT model_version FROM predictions WHERE event_id = ANY($1::text[])", [e.event_id for e in later]
    )
    assert [r["model_version"] for r in versions] == [good.version]
    assert _metric("fluxo_served_model_version", service="consumer", stream="people", task="income") == good.version


async def test_sigkill_mid_stream_then_restart_leaves_exactly_one_row_per_event(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    pool = database.pool
    model = await register(pool, tmp_path, PEOPLE, "income")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database.dsn,
        "ARTIFACT_DIR": str(tmp_path),
        "TOPIC_PREFIX": topics.prefix,
        "CONSUMER_GROUP": f"{topics.prefix}consumer",
        "CONSUMER_STREAMS": "people",
        # Small batches: many commits, so the kill lands between some of them.
        "CONSUMER_MAX_RECORDS": "50",
        # The killed member's partitions are handed over after this long.
        "CONSUMER_SESSION_TIMEOUT_MS": "6000",
        "METRICS_PORT": "0",
        "LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / "consumer.log").open("wb")

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "services.consumer"], cwd=REPO, env=env, stdout=log, stderr=log)

    events = features_events(PEOPLE, 3000, 1)
    total = len(events)
    sent = 0  # events handed to the broker so far (some may not be acknowledged yet)

    async def stream_in() -> None:
        # Paced, so the consumer is killed while events are still arriving.
        nonlocal sent
        for start in range(100, total, 100):
            # Counted before the send: the consumer may score a chunk's first
            # events before the send of its last ones returns.
            sent = start + 100
            await produce(kafka_bootstrap, topics.features("people"), events[start : start + 100])
            await asyncio.sleep(0.1)

    process = start()
    try:
        await produce(kafka_bootstrap, topics.features("people"), events[:100])
        sent = 100
        await wait_for(_at_least(pool, 100), timeout=40, message="the consumer never scored")
        producing = asyncio.create_task(stream_in())
        await wait_for(_at_least(pool, 600), timeout=40, message="the consumer stopped scoring")
        assert process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        killed_at, sent_then = await _count(pool, "SELECT count(*) FROM predictions"), sent
        assert killed_at <= sent_then < total  # it died mid-stream
        await producing
        process = start()
        await wait_for(
            _count_is(pool, total, "SELECT count(DISTINCT event_id) FROM predictions"), timeout=50,
            message="events missing after the restart",
        )
        await wait_for(
            lambda: committed_everything(kafka_bootstrap, env["CONSUMER_GROUP"], topics.features("people")),
            timeout=30, message="offsets not committed after the restart",
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    assert await _count(pool, "SELECT count(*) FROM predictions") == total
    per_event = await pool.fetch("SELECT event_id, count(*) AS n FROM predictions GROUP BY event_id HAVING count(*) <> 1")
    assert per_event == []
    assert await _count(pool, "SELECT count(*) FROM predictions WHERE model_version <> $1", model.version) == 0
    expected_ids = {e.event_id for e in events}
    stored = {r["event_id"] for r in await pool.fetch("SELECT event_id FROM predictions")}
    assert stored == expected_ids
