"""The gateway as a process while its broker, then its database, goes away.

Kafka down: scoring keeps answering from the cached models; /upload,
/train, events and labels answer 503 within DEPENDENCY_TIMEOUT_SECONDS;
once the broker is back, nothing those refused requests started appears on
any topic, and the refused run is recorded failed (a trainer skips it).

PostgreSQL down (immediate shutdown): /ready answers 503 with
models_synced false, then 200 after the restart; scoring keeps answering;
/upload, /train and /predictions answer 503 and nothing is published; the
upload retried under its Idempotency-Key afterwards publishes its rows once.

Both use servers of their own (a one-node KRaft cluster and a PostgreSQL
cluster from shared.infra) that the test stops and starts again on their data.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from shared.infra.kafka_cluster import LocalKafkaCluster
from shared.infra.postgres import LocalPostgres
from shared.topics import Topics
from tests.faults.conftest import FIGURES
from tests.gateway.files import csv_bytes, energy_table
from tests.gateway.server import gateway_process, register_energy_models
from tests.helpers import wait_for
from tests.live import Database, read_all

pytestmark = pytest.mark.asyncio

BOUND = 3.0  # DEPENDENCY_TIMEOUT_SECONDS given to the gateway
# What a refusal may take beyond the bound: the HTTP round trip and a
# loaded 2-core machine.
SLACK = 4.0
PREDICT = {"renewables_share_energy": "0.053", "fossil_share_energy": "99.947", "carbon_intensity_elec": "508.162"}
REGRESS = {"renewables_share_energy": "0.480"}


@pytest.fixture(scope="module")
def single_broker() -> Iterator[LocalKafkaCluster]:
    """A one-node KRaft cluster: it can be killed and started again on its data and port."""
    cluster = LocalKafkaCluster(1)
    try:
        cluster.start()
    except Exception as exc:  # noqa: BLE001 - reported as the fixture's failure
        failure = str(exc)
    else:
        failure = ""
    if failure:
        pytest.fail(f"no Kafka broker for the gateway fault tests: {failure}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


async def timed(call: asyncio.Future | object) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = await call  # type: ignore[misc]
    return response, time.monotonic() - began


def upload_form(rows: int, seed: int) -> dict[str, object]:
    return {"data": {"stream": "energy"},
            "files": {"file": ("energy.csv", csv_bytes(energy_table(rows, seed)), "text/csv")}}


def ids_on(records: list, field: str = "event_id") -> list[str]:
    """The ``field`` of every message (a train command's run is its run_id)."""
    ids = []
    for record in records:
        try:
            value = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            ids.append(str(value.get(field)))
    return ids


async def everything_on(bootstrap: str, topics: Topics) -> dict[str, list]:
    """Every message of every topic of the gateway's deployment."""
    return {topic: await read_all(bootstrap, topic, timeout=30) for topic, _ in topics.all(["energy"])}


async def test_broker_down_scoring_answers_and_refused_requests_leave_nothing(
    single_broker: LocalKafkaCluster, database: Database, tmp_path: Path
) -> None:
    cluster = single_broker
    node = cluster.node_ids[0]
    bootstrap = cluster.bootstrap
    dsn = database.dsn
    await asyncio.to_thread(register_energy_models, dsn, tmp_path / "artifacts")
    with gateway_process(bootstrap, dsn, tmp_path, DEPENDENCY_TIMEOUT_SECONDS=str(BOUND),
                         READY_TIMEOUT_SECONDS="1") as gateway:
        topics = Topics(gateway.env["TOPIC_PREFIX"])
        async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as client:
            # Before the fault: an upload goes through whole.
            before = await client.post("/upload", **upload_form(30, 1), headers={"Idempotency-Key": "before"})
            assert before.status_code == 200, before.text
            assert before.json()["rows_accepted"] == 30

            await asyncio.to_thread(cluster.kill, node)
            down = time.monotonic()

            # Scoring answers from the models in hand.
            predict, predict_s = await timed(client.post("/predict", json=PREDICT))
            regress, regress_s = await timed(client.post("/regress", json=REGRESS))
            assert predict.status_code == 200, predict.text
            assert regress.status_code == 200, regress.text

            upload, upload_s = await timed(client.post(
                "/upload", **upload_form(40, 2), headers={"Idempotency-Key": "during-broker-outage"}))
            train, train_s = await timed(client.post("/train", json={"stream": "energy", "task": "carbon"}))
            events, events_s = await timed(client.post(
                "/v1/streams/energy/events", json={"records": [dict(PREDICT, country="X", year=2001)]},
                headers={"Idempotency-Key": "events-during-outage"}))
            labels, labels_s = await timed(client.post(
                "/v1/streams/energy/labels",
                json={"labels": [{"event_id": "refused-label", "values": {"carbon_intensity_elec": 1.0}}]}))
            for name, response, seconds in (("upload", upload, upload_s), ("train", train, train_s),
                                            ("events", events, events_s), ("labels", labels, labels_s)):
                assert response.status_code == 503, (name, response.status_code, response.text)
                assert seconds <= BOUND + SLACK, f"{name} took {seconds:.1f} s to refuse"
            refused_run = train.json()["run_id"]
            assert train.json()["run_status"] == "failed"
            refused_dataset = upload.json()["dataset_id"]
            assert upload.json()["rows_published"] == 0
            ready = await client.get("/ready")
            assert ready.status_code == 503 and ready.json()["kafka"] is False

            # The broker comes back on its data; the gateway recovers by itself.
            await asyncio.to_thread(cluster.start, node)
            restarted = time.monotonic()

            async def gateway_ready() -> bool:
                return (await client.get("/ready")).status_code == 200

            await wait_for(gateway_ready, 60, interval=0.2, message="the gateway ready after the broker returned")
            recovered_s = time.monotonic() - restarted
            outage_s = restarted - down
            # Requests after the outage go through: the topics are
            # served again, so anything a refused request had queued
            # would have been delivered by now too.
            after = await client.post("/v1/streams/energy/events", json={"records": [dict(PREDICT, country="Y", year=2002)]})
            assert after.status_code == 200, after.text
            retrain = await client.post("/train", json={"stream": "energy", "task": "carbon"})
            assert retrain.status_code == 202, retrain.text

        on_topics = await everything_on(bootstrap, topics)
        run = await database.pool.fetchrow("SELECT status, error FROM training_runs WHERE run_id = $1", refused_run)
        dataset = await database.pool.fetchrow("SELECT status, rows_accepted FROM datasets WHERE id = $1",
                                               refused_dataset)

    raw = ids_on(on_topics[topics.raw("energy")])
    commands = ids_on(on_topics[topics.commands], "run_id")
    labelled = ids_on(on_topics[topics.labels("energy")])
    figures = {
        "predict_s": predict_s, "regress_s": regress_s, "upload_503_s": upload_s, "train_503_s": train_s,
        "events_503_s": events_s, "labels_503_s": labels_s, "outage_s": outage_s, "ready_again_s": recovered_s,
    }
    line = (f"gateway, broker down (bound {BOUND:g} s): "
            + ", ".join(f"{name}={value:.2f}" for name, value in figures.items())
            + f"; raw events after={len(raw)} (30 uploaded before + 1 after), commands={len(commands)}")
    print(line)
    FIGURES.append(line)

    # Nothing the refused requests started: 30 rows before, one event after.
    assert len(raw) == 31, f"{len(raw)} raw events: the refused upload or events leaked"
    assert refused_run not in commands and retrain.json()["run_id"] in commands and len(commands) == 1
    assert labelled == [], "the refused label was published"
    assert run is not None and run["status"] == "failed" and run["error"].startswith("abandoned")
    # The refused upload is recorded as cut short, and is not trained on.
    assert dataset is not None and dataset["status"] == "publishing"


async def test_database_down_scoring_answers_and_nothing_is_published(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    server = LocalPostgres()
    await asyncio.to_thread(server.start)
    try:
        dsn = server.dsn
        await asyncio.to_thread(register_energy_models, dsn, tmp_path / "artifacts")
        with gateway_process(kafka_bootstrap, dsn, tmp_path, DEPENDENCY_TIMEOUT_SECONDS=str(BOUND),
                             READY_TIMEOUT_SECONDS="1", MODEL_REFRESH_SECONDS="2") as gateway:
            topics = Topics(gateway.env["TOPIC_PREFIX"])
            key = f"pg-outage-{uuid.uuid4().hex[:8]}"
            async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as client:
                await asyncio.to_thread(server.halt, "immediate")
                down = time.monotonic()

                async def not_ready() -> httpx.Response | None:
                    response = await client.get("/ready")
                    return response if response.status_code == 503 else None

                ready = await wait_for(not_ready, 30, interval=0.2, message="/ready 503 with PostgreSQL down")
                ready_503_s = time.monotonic() - down
                assert ready.json()["postgres"] is False and ready.json()["models_synced"] is False

                predict, predict_s = await timed(client.post("/predict", json=PREDICT))
                regress, regress_s = await timed(client.post("/regress", json=REGRESS))
                assert predict.status_code == 200, predict.text
                assert regress.status_code == 200, regress.text

                upload, upload_s = await timed(client.post("/upload", **upload_form(25, 3),
                                                           headers={"Idempotency-Key": key}))
                train, train_s = await timed(client.post("/train", json={"stream": "energy", "task": "carbon"}))
                listing, listing_s = await timed(client.get("/predictions"))
                for name, response, seconds in (("upload", upload, upload_s), ("train", train, train_s),
                                                ("predictions", listing, listing_s)):
                    assert response.status_code == 503, (name, response.status_code, response.text)
                    assert seconds <= BOUND + SLACK, f"{name} took {seconds:.1f} s to refuse"

                published_while_down = await everything_on(kafka_bootstrap, topics)

                await asyncio.to_thread(server.resume)
                restarted = time.monotonic()

                async def ready_again() -> httpx.Response | None:
                    response = await client.get("/ready")
                    return response if response.status_code == 200 else None

                ready = await wait_for(ready_again, 60, interval=0.2, message="/ready 200 after PostgreSQL returned")
                ready_200_s = time.monotonic() - restarted
                assert ready.json()["models_synced"] is True

                # The same upload sent again goes through, once.
                retried = await client.post("/upload", **upload_form(25, 3), headers={"Idempotency-Key": key})
                assert retried.status_code == 200, retried.text
                assert retried.json()["rows_accepted"] == 25
                again = await client.post("/upload", **upload_form(25, 3), headers={"Idempotency-Key": key})
                assert again.status_code == 200 and again.json()["replayed"] is True
            raw_after = ids_on(await read_all(kafka_bootstrap, topics.raw("energy"), timeout=30))
    finally:
        await asyncio.to_thread(server.stop)

    leaked = {topic: len(records) for topic, records in published_while_down.items()
              if records and not topic.endswith("streams") and not topic.endswith("models")}
    figures = {"ready_503_s": ready_503_s, "predict_s": predict_s, "regress_s": regress_s, "upload_503_s": upload_s,
               "train_503_s": train_s, "predictions_503_s": listing_s, "ready_200_after_restart_s": ready_200_s}
    line = (f"gateway, PostgreSQL down (bound {BOUND:g} s): "
            + ", ".join(f"{name}={value:.2f}" for name, value in figures.items())
            + f"; messages published while down={sum(leaked.values())}, raw events after retry={len(raw_after)}")
    print(line)
    FIGURES.append(line)
    assert not leaked, f"published while PostgreSQL was down: {leaked}"
    assert len(raw_after) == 25 and len(set(raw_after)) == 25
