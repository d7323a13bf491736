"""Broker crashes lose nothing: the four worker services run as processes
against a three-broker KRaft cluster (replication 3, min.insync.replicas=2)
while events flow, and the leader of a stream partition is SIGKILLed and
restarted on its data, then the next leader too.

Every event the generator had acknowledged must end up normalized (or dead
lettered) and scored by the live models, and no service may die or restart.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import ConsumerRecord

from shared.events import TrainCommand
from shared.infra.kafka_cluster import LocalKafkaCluster
from shared.infra.ports import free_port
from shared.streams import STREAMS
from shared.topics import Topics
from tests.e2e.test_pipeline import TASKS, consumer_versions, generate, rows_per_event_task, service
from tests.faults.conftest import FIGURES
from tests.helpers import wait_for
from tests.live import Database, produce, read_all
from tests.processes import log_tail, service_process

pytestmark = pytest.mark.asyncio

REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2
# Phase 2 runs until the faults are over; the count only bounds it.
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


async def ids_per_stream(bootstrap: str, topic_of) -> dict[str, list[str]]:
    return {stream: event_ids(await read_all(bootstrap, topic_of(stream))) for stream in STREAMS}


def acknowledged_counts(log: Path) -> dict[str, int]:
    """The generator's own count of acknowledged events, from its last log line."""
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            entry = orjson.loads(line)
            if entry.get("event") == "generator_finished":
                return entry["sent"]
    raise AssertionError(f"the generator logged no generator_finished line:\n{log_tail(log)}")


async def topic_settings(bootstrap: str, topic: str) -> tuple[set[int], str]:
    """(replica counts of the topic's partitions, its min.insync.replicas)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        async with asyncio.timeout(20):
            described = await admin.describe_topics([topic])
            responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    replicas = {len(partition["replicas"]) for partition in described[0]["partitions"]}
    entries = responses[0].resources[0][4]
    return replicas, next(entry[1] for entry in entries if entry[0] == "min.insync.replicas")


async def crash_and_recover(cluster: LocalKafkaCluster, topic: str, victim: int) -> dict[str, float | int | bool]:
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
    return {"node": victim, "was_leader": was_leader, "successor": successor, "failover_s": failover,
            "restart_s": restart, "in_sync_s": in_sync}


async def test_acknowledged_events_survive_two_broker_crashes(
    kafka_cluster: LocalKafkaCluster,
    database: Database,
    tmp_path: Path,
    unique_name,
    record_property,
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
            # Trained on command only: no retraining while the brokers crash.
            "trainer": stack.enter_context(service("services.trainer", {
                **env, "SERVICE_NAME": "trainer", "TRAIN_INTERVAL": "0"}, logs)),
            "consumer": stack.enter_context(service("services.consumer", {
                **env, "SERVICE_NAME": "consumer", "METRICS_PORT": str(consumer_metrics),
                "CONSUMER_SESSION_TIMEOUT_MS": "6000"}, logs)),
        }
        pids = {name: process.pid for name, process in workers.items()}

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
            rows = await database.pool.fetch(
                "SELECT run_id, status, error FROM training_runs WHERE run_id = ANY($1::text[])",
                [command.run_id for command in commands])
            failed = [dict(row) for row in rows if row["status"] == "failed"]
            assert not failed, f"training failed: {failed}"
            return sum(row["status"] == "done" for row in rows) == len(commands)

        await wait_for(trained, 120, interval=0.5, message="a model for every task")

        async def consumer_has_all_models() -> bool:
            versions = await consumer_versions(consumer_metrics)
            return all(versions.get(task, 0) > 0 for task in TASKS)

        await wait_for(consumer_has_all_models, 60, interval=0.5, message="the consumer loaded every model")
        ready = time.monotonic() - began

        # Phase 2: events flow while the broker leading raw.energy/0 crashes,
        # then the one that took over.
        generator_log = logs / "generator-flow.log"
        generator = stack.enter_context(service_process("services.generator", {
            **env, "SERVICE_NAME": "generator", "GENERATOR_SEED": "2", "GENERATOR_RATE": str(FLOW_RATE),
            "GENERATOR_COUNT": str(FLOW_COUNT_LIMIT)}, generator_log))

        async def flowing() -> bool:
            return len(await read_all(bootstrap, topics.raw("energy"))) > len(phase1["energy"])

        await wait_for(flowing, 60, interval=0.5, message="phase-2 events reach the raw topic")
        # First the leader of a stream partition, then the broker that took
        # its leadership over (still its leader: Kafka moves leaderships back
        # only at its 5-minute imbalance check).
        flow_topic = topics.raw("energy")
        faults = [await crash_and_recover(cluster, flow_topic, await asyncio.to_thread(cluster.leader_of, flow_topic, 0))]
        assert generator.poll() is None, f"the generator stopped during the first crash:\n{log_tail(generator_log)}"
        faults.append(await crash_and_recover(cluster, flow_topic, faults[0]["successor"]))
        assert generator.poll() is None, f"the generator stopped during the second crash:\n{log_tail(generator_log)}"
        generator.send_signal(signal.SIGTERM)
        await wait_for(lambda: generator.poll() is not None, 60, message="the generator stopped on SIGTERM")
        assert generator.returncode == 0, f"generator exited {generator.returncode}:\n{log_tail(generator_log)}"
        flow_acked = acknowledged_counts(generator_log)

        # Nothing the producer had acknowledged is missing from the raw topics.
        raw = await ids_per_stream(bootstrap, topics.raw)
        acknowledged = {s: len(phase1[s]) + flow_acked.get(s, 0) for s in STREAMS}
        lost = {s: acknowledged[s] - len(set(raw[s])) for s in STREAMS}
        raw_duplicates = sum(len(ids) - len(set(ids)) for ids in raw.values())

        # Every raw event became a features event or a dead letter.
        dead = set(event_ids(await read_all(bootstrap, topics.deadletter)))

        async def all_normalized() -> dict[str, list[str]] | None:
            features = await ids_per_stream(bootstrap, topics.features)
            return features if all(set(raw[s]) <= set(features[s]) | dead for s in STREAMS) else None

        features = await wait_for(all_normalized, 90, interval=1, message="every raw event normalized or dead-lettered")
        features_duplicates = sum(len(ids) - len(set(ids)) for ids in features.values())

        # No event was valid-but-rejected on the way (none was generated invalid).
        assert not dead, f"{len(dead)} events dead-lettered"
        # Every event of phase 2 (the models were live) has a prediction row
        # per task of its stream.
        flow = {s: set(raw[s]) - set(phase1[s]) for s in STREAMS}
        expected = {(event_id, task.name) for s, ids in flow.items() for event_id in ids for task in STREAMS[s].tasks}
        flow_ids = [event_id for ids in flow.values() for event_id in ids]

        async def all_scored() -> list[tuple[str, str, int, int]] | None:
            rows = await rows_per_event_task(database, flow_ids)
            return rows if {(event_id, task) for event_id, task, _, _ in rows} >= expected else None

        try:
            rows = await wait_for(all_scored, 90, interval=1, message="prediction rows for every phase-2 event")
        except AssertionError:
            rows = await rows_per_event_task(database, flow_ids)
            missing = expected - {(event_id, task) for event_id, task, _, _ in rows}
            raise AssertionError(f"{len(missing)} of {len(expected)} predictions missing, e.g. {sorted(missing)[:5]}") from None
        rescored = sum(count - 1 for _, _, count, _ in rows)
        assert all(version > 0 for *_, version in rows), "a phase-2 event was scored without a model"

        # No worker died or was replaced.
        exited = {name: process.poll() for name, process in workers.items() if process.poll() is not None}
        assert not exited, f"services exited: {exited}"
        assert {name: process.pid for name, process in workers.items()} == pids

    figures = {
        "acknowledged": sum(acknowledged.values()),
        "flow_acknowledged": sum(flow_acked.values()),
        "lost": sum(lost.values()),
        "raw_duplicates": raw_duplicates,
        "dead_letters": len(dead),
        "features_redelivered": features_duplicates,
        "predictions_expected": len(expected),
        "predictions_missing": 0,
        "rescored_rows": rescored,
        "pipeline_ready_s": round(ready, 1),
        "test_s": round(time.monotonic() - began, 1),
    }
    crashes = "; ".join(
        f"node {f['node']} killed ({'leader' if f['was_leader'] else 'follower'}): "
        f"leader {f['successor']} after {f['failover_s']:.1f} s, "
        f"restarted in {f['restart_s']:.1f} s, in sync {f['in_sync_s']:.1f} s later"
        for f in faults
    )
    for name, value in figures.items():
        record_property(name, value)
    record_property("crashes", crashes)
    summary = "broker crashes: " + ", ".join(f"{name}={value}" for name, value in figures.items()) + f" | {crashes}"
    print(summary)
    FIGURES.append(summary)
    assert lost == {s: 0 for s in STREAMS}, f"acknowledged events missing from the raw topics: {lost}"
