"""The four worker services as separate processes, end to end over a real
broker and PostgreSQL: generator -> normalizer -> trainer -> consumer."""

from __future__ import annotations

import subprocess
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.events import TrainCommand
from shared.infra.ports import free_port
from shared.kafka.deadletter import ERROR, ORIGIN_TOPIC, read_headers
from tests.streams import STREAMS
from shared.topics import Topics
from tests.helpers import wait_for
from tests.live import Database, produce, read_all
from tests.processes import service_process

pytestmark = pytest.mark.asyncio

TASKS = [(stream.name, task.name) for stream in STREAMS.values() for task in stream.tasks]


def service(module: str, env: dict[str, str], logs: Path) -> AbstractContextManager[subprocess.Popen[bytes]]:
    log = logs / f"{module.rsplit('.', 1)[-1]}-{len(list(logs.iterdir()))}.log"
    return service_process(module, env, log)


async def generate(env: dict[str, str], logs: Path, *, count: int, seed: int, streams: str = ",".join(STREAMS),
                   invalid_rate: float = 0.0) -> None:
    """Run the generator for a fixed count per stream; it must exit 0."""
    extra = {"GENERATOR_COUNT": str(count), "GENERATOR_RATE": "0", "GENERATOR_SEED": str(seed),
             "GENERATOR_STREAMS": streams, "GENERATOR_INVALID_RATE": str(invalid_rate), "SERVICE_NAME": "generator"}
    with service("services.generator", {**env, **extra}, logs) as process:
        await wait_for(lambda: process.poll() is not None, 90, message="generator finished its count")
        assert process.returncode == 0, f"generator exited {process.returncode}"


async def raw_event_ids(bootstrap: str, topics: Topics) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = {}
    for stream in STREAMS:
        ids[stream] = set()
        for record in await read_all(bootstrap, topics.raw(stream)):
            try:
                ids[stream].add(orjson.loads(record.value)["event_id"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                pass  # deliberately broken events have no readable id
    return ids


async def consumer_versions(port: int) -> dict[tuple[str, str], int]:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    versions = {}
    for family in text_string_to_metric_families(text):
        if family.name == "fluxo_served_model_version":
            for sample in family.samples:
                if sample.labels["service"] == "consumer":
                    versions[(sample.labels["stream"], sample.labels["task"])] = int(sample.value)
    return versions


async def rows_per_event_task(db: Database, event_ids: list[str]) -> list[tuple[str, str, int, int]]:
    """(event_id, task, rows, max model_version) for the given events."""
    return [tuple(r) for r in await db.pool.fetch(
        """SELECT event_id, task, count(*), max(model_version) FROM predictions
           WHERE event_id = ANY($1::text[]) GROUP BY event_id, task""", event_ids)]


async def test_pipeline_trains_scores_dead_letters_and_hot_swaps(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    consumer_metrics = free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database.dsn,
        "TOPIC_PREFIX": topics.prefix,
        "ARTIFACT_DIR": str(tmp_path / "artifacts"),
        "LOG_LEVEL": "INFO",
    }
    with ExitStack() as stack:
        stack.enter_context(service("services.normalizer", {**env, "SERVICE_NAME": "normalizer"}, logs))
        stack.enter_context(service("services.trainer", {
            **env, "SERVICE_NAME": "trainer", "TRAIN_INTERVAL": "2", "TRAIN_MIN_ROWS": "300"}, logs))
        consumer = stack.enter_context(service("services.consumer", {
            **env, "SERVICE_NAME": "consumer", "METRICS_PORT": str(consumer_metrics)}, logs))

        # Phase 1: enough events to train every task, a few of them invalid.
        await generate(env, logs, count=600, seed=1, invalid_rate=0.05)
        phase1 = await raw_event_ids(kafka_bootstrap, topics)

        async def all_models_active() -> bool:
            return await database.pool.fetchval("SELECT count(*) FROM models WHERE active") == len(TASKS)

        await wait_for(all_models_active, 180, interval=0.5, message="an active model for every task")

        async def consumer_has_all_models() -> bool:
            versions = await consumer_versions(consumer_metrics)
            return all(versions.get(task, 0) > 0 for task in TASKS)

        await wait_for(consumer_has_all_models, 60, interval=0.5, message="the consumer loaded every model")

        # Invalid events are dead-lettered with their origin and a reason; none is lost.
        dead = await read_all(kafka_bootstrap, topics.deadletter)
        assert dead, "no dead letters although 5% of the events were invalid"
        for record in dead:
            headers = read_headers(record.headers)
            assert headers[ORIGIN_TOPIC] in {topics.raw(s) for s in STREAMS}
            assert headers[ERROR], "a dead letter without a reason"

        async def nothing_lost() -> bool:
            raw = features = 0
            for s in STREAMS:
                raw += len(await read_all(kafka_bootstrap, topics.raw(s)))
                features += len(await read_all(kafka_bootstrap, topics.features(s)))
            dead_now = len(await read_all(kafka_bootstrap, topics.deadletter))
            return features + dead_now == raw

        await wait_for(nothing_lost, 60, interval=1, message="every raw event became a features event or a dead letter")

        # Phase 2: every valid event after the models are live gets exactly
        # one scored prediction row per task of its stream.
        await generate(env, logs, count=150, seed=2)
        phase2 = {s: ids - phase1[s] for s, ids in (await raw_event_ids(kafka_bootstrap, topics)).items()}
        expected = {(event_id, task.name) for s, ids in phase2.items() for event_id in ids for task in STREAMS[s].tasks}
        all_ids = [event_id for ids in phase2.values() for event_id in ids]

        async def phase2_scored() -> list[tuple[str, str, int, int]] | None:
            rows = await rows_per_event_task(database, all_ids)
            return rows if len(rows) == len(expected) else None

        rows = await wait_for(phase2_scored, 90, interval=0.5, message="a prediction row for every phase-2 event and task")
        assert {(event_id, task) for event_id, task, _, _ in rows} == expected
        assert all(count == 1 for _, _, count, _ in rows), "an event was scored twice for one task"
        assert all(version > 0 for *_, version in rows), "an event after the first model went unscored"

        # A forced retrain: the consumer switches version without a restart.
        command = TrainCommand(stream="energy", task="carbon", algorithm="xgboost", force=True)
        await produce(kafka_bootstrap, topics.commands, [command], keys=["energy/carbon"])

        async def forced_run_done() -> int | None:
            row = await database.pool.fetchrow(
                "SELECT status, error, model_id FROM training_runs WHERE run_id = $1", command.run_id)
            if row and row["status"] == "failed":
                raise AssertionError(f"forced retrain failed: {row['error']}")
            return row["model_id"] if row and row["status"] == "done" else None

        model_id = await wait_for(forced_run_done, 90, interval=0.5, message="the forced retrain finished")
        new_version = await database.pool.fetchval("SELECT version FROM models WHERE id = $1", model_id)

        async def consumer_swapped() -> bool:
            return (await consumer_versions(consumer_metrics)).get(("energy", "carbon"), 0) >= new_version

        await wait_for(consumer_swapped, 60, interval=0.5, message=f"the consumer moved to version {new_version}")
        before = await raw_event_ids(kafka_bootstrap, topics)
        await generate(env, logs, count=40, seed=3, streams="energy")
        phase3 = list((await raw_event_ids(kafka_bootstrap, topics))["energy"] - before["energy"])

        async def phase3_on_new_model() -> bool:
            versions = await database.pool.fetch(
                "SELECT model_version FROM predictions WHERE task = 'carbon' AND event_id = ANY($1::text[])", phase3)
            return len(versions) == len(phase3) and all(v["model_version"] >= new_version for v in versions)

        await wait_for(phase3_on_new_model, 60, interval=0.5, message="new events scored by the retrained model")
        assert consumer.poll() is None, "the consumer restarted or died"
