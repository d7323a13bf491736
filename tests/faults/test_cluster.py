"""Broker crashes lose nothing: the four worker services run as processes
against a three-broker KRaft cluster (replication 3, min.insync.replicas=2)
while events flow; the leader of a stream partition is SIGKILLed and
restarted on its data, then the broker that took its leadership over.

Every event the generator had acknowledged must end up normalized and
scored by the live models, and no service may die or restart.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import ConsumerRecord

from shared.events import TrainCommand
from shared.infra.kafka_cluster import LocalKafkaCluster
from shared.infra.ports import free_port
from tests.streams import STREAMS
from shared.topics import Topics
from tests.e2e.test_pipeline import TASKS, consumer_versions, generate, rows_per_event_task, service
from tests.faults.conftest import FIGURES
from tests.helpers import wait_for
from tests.live import Database, produce, read_all
from tests.processes import log_tail, service_process

pytestmark = pytest.mark.asyncio

REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2
# Events per second per stream while the brokers crash; the generator runs
# until the crashes are over (the count only bounds it).
FLOW_RATE = 10
FLOW_COUNT_LIMIT = 100_000


def event_ids(records: Iterable[ConsumerRecord]) -> list[str]:
    """The event ids of the records that have one (duplicates kept)."""
    ids = []
    for record in records:
        try:
            ids.append(orjson.loads(record.value)["event_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            pass  # a message without a readable id
    return ids


async def ids_per_stream(bootstrap: str, topic_of: Callable[[str], str]) -> dict[str, list[str]]:
    return {stream: event_ids(await read_all(bootstrap, topic_of(stream))) for stream in STREAMS}


def acknowledged_counts(log: Path) -> dict[str, int]:
    """The generator's own count of acknowledged events per stream, from the
    line it logs when it stops."""
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            entry = orjson.loads(line)
            if entry.get("event") == "generator_finished":
                return entry["sent"]
    raise AssertionError(f"the generator logged no generator_finished line:\n{log_tail(log)}")


async def topic_settings(bootstrap: str, topic: str) -> tuple[set[int], str]:
    """(replica counts of the topic's partitions, its min.insync.replicas)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        async with asyncio.timeout(30):
            await admin.start()
            described = await admin.describe_topics([topic])
            responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    replicas = {len(partition["replicas"]) for partition in described[0]["partitions"]}
    entries = responses[0].resources[0][4]
    return replicas, next(entry[1] for entry in entries if entry[0] == "min.insync.replicas")


async def remaining(missing: Callable[[], Awaitable[set[Any]]], timeout: float) -> set[Any]:
    """Poll ``missing`` until it answers an empty set or ``timeout`` passes;
    returns its last answer (what is still missing)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (left := await missing()) and loop.time() < deadline:
        await asyncio.sleep(1)
    return left


async def crash_and_recover(cluster: LocalKafkaCluster, topic: str, victim: int) -> dict[str, Any]:
    """SIGKILL node ``victim``, wait for ``topic``/0 to have another leader,
    start the node again on its data and wait until it is back in every ISR;
    returns what was measured."""
    was_leader = await asyncio.to_thread(cluster.leader_of, topic, 0) == victim
    killed = time.monotonic()
    await asyncio.to_thread(cluster.kill, victim)

    async def new_leader() -> int | None:
        leader = await asyncio.to_thread(cluster.leader_of, topic, 0)
        return leader if leader not in (victim, -1) else None

    successor = await wait_for(new_leader, 60, interval=0.2, message=f"a leader of {topic}/0 after node {victim} died")
    failover = time.monotonic() - killed
    restarting = time.monotonic()
    await asyncio.to_thread(cluster.start, victim)
    restart = time.monotonic() - restarting
    in_sync = await asyncio.to_thread(cluster.wait_in_sync, victim, 90)
    assert victim in await asyncio.to_thread(cluster.isr_of, topic, 0)
    return {"node": victim, "was_leader": was_leader, "successor": successor,
            "failover_s": failover, "restart_s": restart, "in_sync_s": in_sync}


def describe_crash(crash: dict[str, Any]) -> str:
    role = "leader" if crash["was_leader"] else "follower"
    return (f"node {crash['node']} ({role}) killed: new leader {crash['successor']} after {crash['failover_s']:.1f} s, "
            f"restarted in {crash['restart_s']:.1f} s, back in every ISR {crash['in_sync_s']:.1f} s later")


async def test_acknowledged_events_survive_two_broker_crashes(
    kafka_cluster: LocalKafkaCluster,
    database: Database,
    tmp_path: Path,
    unique_name: Callable[..., str],
    record_property: Callable[[str, object], None],
) -> None:
    began = time.monotonic()
    cluster = kafka_cluster
    bootstrap = cluster.bootstrap
    topics = Topics(f"{unique_name('f')}-")
    logs = tmp_path / "logs"
    logs.mkdir()
    consumer_metrics = free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": database.dsn,
        "TOPIC_PREFIX": topics.prefix,
        "TOPIC_REPLICATION_FACTOR": str(REPLICATION_FACTOR),
        "TOPIC_MIN_INSYNC_REPLICAS": str(MIN_INSYNC_REPLICAS),
        "ARTIFACT_DIR": str(tmp_path / "artifacts"),
        "LOG_LEVEL": "INFO",
        # Enough anomalies in few events for the pressure classifier.
        "GENERATOR_ANOMALY_RATE": "0.1",
    }
    with ExitStack() as stack:
        workers = {
            "normalizer": stack.enter_context(service("services.normalizer", {**env, "SERVICE_NAME": "normalizer"}, logs)),
            # Trained by command only: no retraining while the brokers crash.
            "trainer": stack.enter_context(service("services.trainer", {
                **env, "SERVICE_NAME": "trainer", "TRAIN_INTERVAL": "0"}, logs)),
            "consumer": stack.enter_context(service("services.consumer", {
                **env, "SERVICE_NAME": "consumer", "METRICS_PORT": str(consumer_metrics),
                "CONSUMER_SESSION_TIMEOUT_MS": "6000"}, logs)),
        }

        # Phase 1: events to train every task on, then one train command each.
        await generate(env, logs, count=200, seed=1)
        replicas, min_insync = await topic_settings(bootstrap, topics.raw("energy"))
        assert replicas == {REPLICATION_FACTOR}, f"raw topic partitions have {replicas} replicas"
        assert min_insync == str(MIN_INSYNC_REPLICAS)
        phase1 = await ids_per_stream(bootstrap, topics.raw)

        async def phase1_normalized() -> bool:
            features = await ids_per_stream(bootstrap, topics.features)
            return all(set(phase1[s]) <= set(features[s]) for s in STREAMS)

        await wait_for(phase1_normalized, 90, interval=0.5, message="phase-1 events normalized")
        commands = [TrainCommand(stream=stream, task=task) for stream, task in TASKS]
        for command in commands:
            await produce(bootstrap, topics.commands, [command], keys=[f"{command.stream}/{command.task}"])

        async def trained() -> bool:
            runs = await database.pool.fetch(
                "SELECT run_id, status, error FROM training_runs WHERE run_id = ANY($1::text[])",
                [command.run_id for command in commands])
            failed = [dict(run) for run in runs if run["status"] == "failed"]
            assert not failed, f"training failed: {failed}"
            return sum(run["status"] == "done" for run in runs) == len(commands)

        await wait_for(trained, 120, interval=0.5, message="a model for every task")

        async def consumer_has_all_models() -> bool:
            versions = await consumer_versions(consumer_metrics)
            return all(versions.get(task, 0) > 0 for task in TASKS)

        await wait_for(consumer_has_all_models, 60, interval=0.5, message="the consumer loaded every model")
        ready = time.monotonic() - began

        # Phase 2: events flow while the broker leading raw.energy/0 crashes,
        # then the broker that took over (still the leader: Kafka moves
        # leaderships back only at its 5-minute imbalance check).
        generator_log = logs / "generator-flow.log"
        generator = stack.enter_context(service_process("services.generator", {
            **env, "SERVICE_NAME": "generator", "GENERATOR_SEED": "2", "GENERATOR_RATE": str(FLOW_RATE),
            "GENERATOR_COUNT": str(FLOW_COUNT_LIMIT)}, generator_log))
        flow_topic = topics.raw("energy")

        async def flowing() -> bool:
            return len(await read_all(bootstrap, flow_topic)) > len(phase1["energy"])

        await wait_for(flowing, 60, interval=0.5, message="phase-2 events reach the raw topic")
        first = await asyncio.to_thread(cluster.leader_of, flow_topic, 0)
        crashes = [await crash_and_recover(cluster, flow_topic, first)]
        assert generator.poll() is None, f"the generator stopped during the first crash:\n{log_tail(generator_log)}"
        crashes.append(await crash_and_recover(cluster, flow_topic, crashes[0]["successor"]))
        assert generator.poll() is None, f"the generator stopped during the second crash:\n{log_tail(generator_log)}"
        generator.send_signal(signal.SIGTERM)
        await wait_for(lambda: generator.poll() is not None, 60, message="the generator stopped on SIGTERM")
        assert generator.returncode == 0, f"generator exited {generator.returncode}:\n{log_tail(generator_log)}"

        # What the producer had acknowledged is what the raw topics hold.
        raw = await ids_per_stream(bootstrap, topics.raw)
        flow_acked = acknowledged_counts(generator_log)
        acknowledged = {s: len(phase1[s]) + flow_acked.get(s, 0) for s in STREAMS}
        lost = {s: acknowledged[s] - len(set(raw[s])) for s in STREAMS}

        # Every raw event becomes a features event or a dead letter, and every
        # event of phase 2 (the models were live) gets a prediction row per
        # task of its stream. What is still missing at the deadline is
        # reported with the figures, then asserted.
        dead = set(event_ids(await read_all(bootstrap, topics.deadletter)))
        flow = {s: set(raw[s]) - set(phase1[s]) for s in STREAMS}
        expected = {(event_id, task.name) for s, ids in flow.items() for event_id in ids for task in STREAMS[s].tasks}
        flow_ids = [event_id for ids in flow.values() for event_id in ids]
        features: dict[str, list[str]] = {}
        rows: list[tuple[str, str, int, int]] = []

        async def unnormalized() -> set[str]:
            features.update(await ids_per_stream(bootstrap, topics.features))
            return {event_id for s in STREAMS for event_id in set(raw[s]) - set(features[s]) - dead}

        async def unscored() -> set[tuple[str, str]]:
            rows[:] = await rows_per_event_task(database, flow_ids)
            return expected - {(event_id, task) for event_id, task, _, _ in rows}

        not_normalized = await remaining(unnormalized, 90)
        not_scored = await remaining(unscored, 90)
        # Nothing supervises the workers here: one that died stays dead, and
        # one still running is the very process started above.
        exited = {name: process.poll() for name, process in workers.items() if process.poll() is not None}

    figures = {
        "acknowledged": sum(acknowledged.values()),
        "acknowledged_during_crashes": sum(flow_acked.values()),
        "lost": sum(lost.values()),
        "raw_duplicates": sum(len(ids) - len(set(ids)) for ids in raw.values()),
        "not_normalized": len(not_normalized),
        "dead_letters": len(dead),
        "features_redelivered": sum(len(ids) - len(set(ids)) for ids in features.values()),
        "predictions_expected": len(expected),
        "predictions_missing": len(not_scored),
        "predictions_rescored": sum(count - 1 for _, _, count, _ in rows),
        "services_exited": len(exited),
        "pipeline_ready_s": round(ready, 1),
        "test_s": round(time.monotonic() - began, 1),
    }
    for name, value in figures.items():
        record_property(name, value)
    record_property("crashes", "; ".join(describe_crash(crash) for crash in crashes))
    summary = "broker crashes: " + ", ".join(f"{name}={value}" for name, value in figures.items())
    for line in (summary, *(f"  {describe_crash(crash)}" for crash in crashes)):
        print(line)
        FIGURES.append(line)

    assert lost == {s: 0 for s in STREAMS}, f"acknowledged events missing from the raw topics: {lost}"
    assert not not_normalized, f"{len(not_normalized)} events never normalized, e.g. {sorted(not_normalized)[:5]}"
    # None was generated invalid: a dead letter would be a valid event lost.
    assert not dead, f"{len(dead)} events dead-lettered, e.g. {sorted(dead)[:5]}"
    assert not not_scored, f"{len(not_scored)} of {len(expected)} predictions missing, e.g. {sorted(not_scored)[:5]}"
    assert all(version > 0 for *_, version in rows), "a phase-2 event was scored without a model"
    assert not exited, f"services exited: {exited}"
