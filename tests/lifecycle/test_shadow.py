"""Shadow, promote, roll back, against a real broker, PostgreSQL, the
consumer and the trainer in-process and the gateway as a process.

A shadow is scored beside the champion on every event, its predictions are
stored apart and never served (not on the predictions topic, not by the
gateway); once enough labelled events are scored by both, the trainer
promotes it when it is not worse and retires it when it is. A rollback
(``POST /models/{id}/activate``) is followed by the consumer and the gateway
within seconds, and the history says who did what."""

from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path

import httpx
from prometheus_client import REGISTRY

from services.consumer.service import run as run_consumer
from services.consumer.settings import ConsumerSettings
from services.trainer.service import run as run_trainer
from services.trainer.settings import TrainerSettings
from shared.events import Prediction
from shared.ml import registry
from shared.ml.registry import ModelRecord
from shared.topics import Topics
from tests.gateway.server import gateway_process
from tests.helpers import wait_for
from tests.live import Database, produce, read_all, running
from tests.ml.factory import register
from tests.ml.synthetic import features_events
from tests.streams import PEOPLE

WEAK = {"algorithm": "random_forest", "hyperparameters": {"n_estimators": 2, "max_depth": 1}, "n": 300, "seed": 1}
STRONG = {"algorithm": "xgboost", "hyperparameters": {"n_estimators": 80}, "n": 1500, "seed": 2}
LABELLED = PEOPLE.task("income").shadow.min_labels + 60


def _settings(kafka: str, database: Database, topics: Topics, artifacts: Path):  # noqa: ANN202
    common = {"kafka_bootstrap_servers": kafka, "database_url": database.dsn, "artifact_dir": artifacts,
              "topic_prefix": topics.prefix, "log_json": False, "model_refresh_seconds": 2.0}
    consumer = ConsumerSettings(**common, consumer_streams=("people",))
    trainer = TrainerSettings(**{k: v for k, v in common.items() if k != "model_refresh_seconds"},
                              train_streams=("people",), train_interval=0, train_shadow_check_seconds=1.0)
    return consumer, trainer


def _served(service: str) -> float | None:
    return REGISTRY.get_sample_value("fluxo_served_model_version",
                                     {"service": service, "stream": "people", "task": "income"})


async def _rows(pool, role: str, model_id: int) -> int:  # noqa: ANN001
    return int(await pool.fetchval("SELECT count(*) FROM predictions WHERE role = $1 AND model_id = $2", role, model_id))


async def _champion_id(pool) -> int | None:  # noqa: ANN001
    model = await registry.active_model(pool, "people", "income")
    return model.id if model else None


def _gateway_answers(url: str, record: dict) -> int:
    answer = httpx.post(f"{url}/v1/streams/people/predict", json={"task": "income", "record": record}, timeout=10)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["model_id"])


async def test_a_shadow_that_is_not_worse_is_promoted_and_a_rollback_is_followed(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    pool = database.pool
    artifacts = tmp_path / "artifacts"
    champion = await register(pool, artifacts, PEOPLE, "income", **WEAK)
    shadow = await register(pool, artifacts, PEOPLE, "income", activate=False, shadow=True, **STRONG)
    assert shadow.shadow and not shadow.active
    consumer, trainer = _settings(kafka_bootstrap, database, topics, artifacts)
    events = features_events(PEOPLE, LABELLED, seed=30)
    # Whole numbers are valid for every people feature (some are integers).
    record = {**{k: round(v) for k, v in events[0].features.items()}, **events[0].categories}
    with gateway_process(kafka_bootstrap, database.dsn, tmp_path, TOPIC_PREFIX=topics.prefix,
                         MODEL_REFRESH_SECONDS="2") as gateway:
        assert _gateway_answers(gateway.url, record) == champion.id
        async with running(partial(run_consumer, consumer)), running(partial(run_trainer, trainer)):
            await produce(kafka_bootstrap, topics.features("people"), events)
            promoted = await wait_for(partial(_promoted, pool, shadow), timeout=90,
                                      message="the shadow was not promoted")
            # Both scored every event; only the champion's answers went out.
            assert await _rows(pool, "champion", champion.id) == LABELLED
            assert await _rows(pool, "shadow", shadow.id) == LABELLED
            messages = [Prediction.model_validate_json(m.value) for m in
                        await read_all(kafka_bootstrap, topics.predictions("people"))]
            assert Counter(m.event_id for m in messages) == Counter(e.event_id for e in events)
            assert {m.model_version for m in messages} == {champion.version}

            # Consumer and gateway follow the promotion.
            await wait_for(lambda: _served("consumer") == shadow.version, timeout=30, message="consumer kept v1")
            await wait_for(lambda: _gateway_answers(gateway.url, record) == shadow.id, timeout=30,
                           message="gateway did not follow the promotion")

            # Roll back to the first champion through the API.
            answer = httpx.post(f"{gateway.url}/models/{champion.id}/activate",
                                json={"alias": "champion", "reason": "rollback drill"}, timeout=10)
            assert answer.status_code == 200, answer.text
            assert answer.json()["alias"] == "champion"
            await wait_for(lambda: _served("consumer") == champion.version, timeout=30,
                           message="consumer did not follow the rollback")
            await wait_for(lambda: _gateway_answers(gateway.url, record) == champion.id, timeout=30,
                           message="gateway did not follow the rollback")
            after = features_events(PEOPLE, 20, seed=31)
            await produce(kafka_bootstrap, topics.features("people"), after)
            await wait_for(partial(_scored_by, pool, after, champion.id), timeout=40,
                           message="events after the rollback not scored by the old champion")

        models = httpx.get(f"{gateway.url}/models", params={"stream": "people", "task": "income"}, timeout=10).json()
        aliases = {m["id"]: m["alias"] for m in models}
        assert aliases == {champion.id: "champion", shadow.id: None}
        history = httpx.get(f"{gateway.url}/models/activations", params={"stream": "people"}, timeout=10).json()
    newest_first = [(h["model_id"], h["alias"], h["trigger"], h["actor"]) for h in history]
    assert newest_first == [
        (champion.id, "champion", "manual", "api"),  # the rollback
        (shadow.id, "champion", "shadow", "trainer"),  # the promotion
        (shadow.id, "shadow", "test", "tests"),
        (champion.id, "champion", "test", "tests"),
    ]
    assert history[0]["reason"] == "rollback drill" and history[0]["previous_model_id"] == shadow.id
    assert "not worse" in history[1]["reason"] and promoted.id == shadow.id


async def _promoted(pool, shadow: ModelRecord) -> ModelRecord | None:  # noqa: ANN001
    model = await registry.active_model(pool, "people", "income")
    return model if model is not None and model.id == shadow.id else None


async def _scored_by(pool, events, model_id: int) -> bool:  # noqa: ANN001
    rows = await pool.fetch("SELECT model_id FROM predictions WHERE role = 'champion' AND event_id = ANY($1::text[])",
                            [e.event_id for e in events])
    return len(rows) == len(events) and {r["model_id"] for r in rows} == {model_id}


async def test_a_worse_shadow_is_retired_and_the_champion_kept(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    pool = database.pool
    artifacts = tmp_path / "artifacts"
    champion = await register(pool, artifacts, PEOPLE, "income", **STRONG)
    shadow = await register(pool, artifacts, PEOPLE, "income", activate=False, shadow=True, **WEAK)
    consumer, trainer = _settings(kafka_bootstrap, database, topics, artifacts)
    events = features_events(PEOPLE, LABELLED, seed=40)
    async with running(partial(run_consumer, consumer)), running(partial(run_trainer, trainer)):
        await produce(kafka_bootstrap, topics.features("people"), events)
        await wait_for(partial(_no_shadow, pool), timeout=90, message="the worse shadow was not retired")
        assert await _champion_id(pool) == champion.id
        # The consumer stops scoring with it.
        await wait_for(lambda: _shadow_served() == 0, timeout=30, message="consumer kept the shadow")
        later = features_events(PEOPLE, 20, seed=41)
        await produce(kafka_bootstrap, topics.features("people"), later)
        await wait_for(partial(_scored_by, pool, later, champion.id), timeout=40, message="later events not scored")
        shadow_rows = await pool.fetchval("SELECT count(*) FROM predictions WHERE role = 'shadow' "
                                          "AND event_id = ANY($1::text[])", [e.event_id for e in later])
        assert shadow_rows == 0
    (retired,) = [a for a in await registry.activations(pool, "people", "income") if a.alias == "retired"]
    assert (retired.model_id, retired.trigger, retired.actor) == (shadow.id, "shadow", "trainer")
    assert "worse" in retired.reason and "not worse" not in retired.reason


async def _no_shadow(pool) -> bool:  # noqa: ANN001
    return await registry.shadow_model(pool, "people", "income") is None


def _shadow_served() -> float | None:
    return REGISTRY.get_sample_value("fluxo_served_shadow_version",
                                     {"service": "consumer", "stream": "people", "task": "income"})
