"""The consumer against PostgreSQL failures that are not a lost connection:
a read-only server (after a failover), a full disk, a statement timeout. Each
must hold the batch back and retry it (nothing dead-lettered, nothing
committed before its rows are written), while a record's own data error (a
NUL character PostgreSQL refuses) is isolated and dead-lettered alone.

The errors are PostgreSQL's own: a trigger on ``predictions`` raises them
with their SQLSTATE while the test says so."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import orjson
from prometheus_client import REGISTRY

from services.consumer.service import run as run_consumer
from services.consumer.settings import ConsumerSettings
from shared.kafka.deadletter import ERROR, read_headers
from shared.topics import Topics
from tests.helpers import wait_for
from tests.live import Database, committed_everything, produce, read_all, running
from tests.ml.factory import register
from tests.ml.synthetic import features_events
from tests.streams import ENERGY

FAULT = """
CREATE TABLE injected_fault (sqlstate text);
INSERT INTO injected_fault VALUES (NULL);
CREATE FUNCTION injected_fault() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE code text := (SELECT sqlstate FROM injected_fault);
BEGIN
    IF code IS NOT NULL THEN
        RAISE EXCEPTION 'injected fault %', code USING ERRCODE = code;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER injected_fault BEFORE INSERT ON predictions
    FOR EACH STATEMENT EXECUTE FUNCTION injected_fault();
"""


def _retries(service: str) -> float:
    return REGISTRY.get_sample_value(
        "fluxo_retries_total", {"service": service, "operation": "batch", "outcome": "retried"}) or 0.0


async def test_database_outages_hold_the_batch_back_and_a_nul_is_dead_lettered_alone(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    pool = database.pool
    await register(pool, tmp_path, ENERGY, "carbon")
    await register(pool, tmp_path, ENERGY, "cluster")
    await pool.execute(FAULT)
    service = f"consumer-{topics.prefix.strip('-')}"
    settings = ConsumerSettings(
        kafka_bootstrap_servers=kafka_bootstrap, database_url=database.dsn, artifact_dir=tmp_path,
        topic_prefix=topics.prefix, consumer_group=f"{topics.prefix}consumer", service_name=service, log_json=False,
    )
    events = features_events(ENERGY, 40, 5)
    topic = topics.features("energy")
    async with running(partial(run_consumer, settings)):
        # Read-only server (25006), disk full (53100), statement timeout
        # (57014), one after another (shared/retry.py's unit tests cover the
        # rest of the classification without a server).
        for code in ("25006", "53100", "57014"):
            await pool.execute("UPDATE injected_fault SET sqlstate = $1", code)
            before = _retries(service)
            if code == "25006":
                await produce(kafka_bootstrap, topic, events)
            await wait_for(lambda before=before: _retries(service) >= before + 1, 60,
                           message=f"the batch retried under SQLSTATE {code}")
            assert await pool.fetchval("SELECT count(*) FROM predictions") == 0
            assert not await committed_everything(kafka_bootstrap, settings.group, topic), \
                f"offsets committed with no rows written under SQLSTATE {code}"
            assert await read_all(kafka_bootstrap, topics.deadletter) == [], \
                f"SQLSTATE {code} dead-lettered events: an outage became dead letters"
        await pool.execute("UPDATE injected_fault SET sqlstate = NULL")
        await wait_for(lambda: committed_everything(kafka_bootstrap, settings.group, topic), 60,
                       message="offsets committed once the database is back")
        assert await pool.fetchval("SELECT count(DISTINCT event_id) FROM predictions") == len(events)

        # A NUL in a string column is the record's own fault (SQLSTATE 22021):
        # isolated and dead-lettered alone, its neighbours scored.
        poisoned = features_events(ENERGY, 3, 6)
        bad = poisoned[1].model_copy(update={"key": "Nor\x00way"})
        await produce(kafka_bootstrap, topic, [poisoned[0], bad, poisoned[2]], keys=["a", "b", "c"])
        await wait_for(lambda: committed_everything(kafka_bootstrap, settings.group, topic), 60,
                       message="the NUL batch committed")
    dead = await read_all(kafka_bootstrap, topics.deadletter)
    assert [orjson.loads(r.value)["event_id"] for r in dead] == [bad.event_id]
    assert "CharacterNotInRepertoire" in read_headers(dead[0].headers)[ERROR] or "0x00" in read_headers(dead[0].headers)[ERROR]
    ids = {r["event_id"] for r in await pool.fetch("SELECT event_id FROM predictions")}
    assert {poisoned[0].event_id, poisoned[2].event_id} <= ids and bad.event_id not in ids


async def test_failed_prediction_rows_are_stored_apart_from_unscored_ones(database: Database) -> None:
    """A model that raised leaves 'failed' rows under its own version (migration 0005)."""
    await database.pool.execute(
        "INSERT INTO predictions (event_id, stream, task, model_version, model_id, status) "
        "VALUES ('e1', 'energy', 'carbon', 3, 30, 'failed'), ('e1', 'energy', 'carbon', 0, NULL, 'unscored')"
    )
    rows = await database.pool.fetch("SELECT status, model_version FROM predictions ORDER BY model_version")
    assert [(r["status"], r["model_version"]) for r in rows] == [("unscored", 0), ("failed", 3)]
