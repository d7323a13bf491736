"""Targets are optional: an event without its outcome is scored, and the
outcome can come later on ``labels.<stream>``. Against a real broker and
PostgreSQL: unlabelled events are scored, late labels join the stored
predictions (error against the row's own prediction, and the rolling
error), a label that comes before its event waits for it, a label for an
event that never comes is dead-lettered with the reason after the bound,
and the trainer learns from events whose labels came later."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from services.consumer.service import run as run_consumer
from services.consumer.settings import ConsumerSettings
from services.trainer.service import run as run_trainer
from services.trainer.settings import TrainerSettings
from shared.events import FeaturesEvent, LabelEvent, TrainCommand
from shared.kafka.deadletter import ERROR, ORIGIN_TOPIC, read_headers
from shared.ml import registry
from shared.topics import Topics
from tests.helpers import wait_for
from tests.live import Database, produce, read_all, running
from tests.ml.factory import register
from tests.ml.synthetic import features_events
from tests.streams import PEOPLE

TARGET = PEOPLE.task("income").target
assert TARGET is not None


def _unlabelled(events: list[FeaturesEvent]) -> list[FeaturesEvent]:
    return [event.model_copy(update={"targets": {}}) for event in events]


def _labels(events: list[FeaturesEvent]) -> list[LabelEvent]:
    return [LabelEvent(event_id=e.event_id, stream=e.stream, values={TARGET: e.targets[TARGET]}) for e in events]


def _consumer(kafka: str, database: Database, topics: Topics, artifacts: Path, **overrides) -> ConsumerSettings:
    return ConsumerSettings(
        kafka_bootstrap_servers=kafka, database_url=database.dsn, artifact_dir=artifacts, topic_prefix=topics.prefix,
        consumer_streams=("people",), log_json=False, **overrides,
    )


async def _count(pool, query: str, *args) -> int:  # noqa: ANN001
    return int(await pool.fetchval(query, *args))


async def test_unlabelled_events_are_scored_and_late_labels_join_them(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    pool = database.pool
    model = await register(pool, tmp_path, PEOPLE, "income")
    truth = features_events(PEOPLE, 120, seed=21)
    late, early = truth[:100], truth[100:]  # labels after their events / before them
    settings = _consumer(kafka_bootstrap, database, topics, tmp_path, consumer_label_ttl_seconds=20)
    stranger = LabelEvent(event_id="no-such-event", stream="people", values={TARGET: 50_000.0})
    rolling = partial(REGISTRY.get_sample_value, "fluxo_prediction_rolling_error",
                      {"stream": "people", "task": "income", "model_version": str(model.version), "metric": "mae"})
    async with running(partial(run_consumer, settings)):
        await produce(kafka_bootstrap, topics.features("people"), _unlabelled(late))
        await wait_for(lambda: _count(pool, "SELECT count(*) FROM predictions WHERE status = 'scored'"),
                       timeout=40, message="unlabelled events not scored")
        await wait_for(partial(_equals, pool, 100, "SELECT count(*) FROM predictions WHERE status = 'scored'"),
                       timeout=40, message="not every unlabelled event scored")
        assert await _count(pool, "SELECT count(*) FROM predictions WHERE actual IS NOT NULL OR error IS NOT NULL") == 0
        assert rolling() is None  # no outcome known yet: no error to report

        await produce(kafka_bootstrap, topics.labels("people"), _labels(late) + _labels(early) + [stranger])
        await wait_for(partial(_equals, pool, 100, "SELECT count(*) FROM predictions WHERE actual IS NOT NULL"),
                       timeout=40, message="late labels not joined")
        # The early labels wait for their events, the stranger too until the bound.
        await wait_for(partial(_equals, pool, 21, "SELECT count(*) FROM pending_labels WHERE stream = 'people'"),
                       timeout=20, message="early labels not kept pending")
        await produce(kafka_bootstrap, topics.features("people"), _unlabelled(early))
        await wait_for(partial(_equals, pool, 120, "SELECT count(*) FROM predictions WHERE actual IS NOT NULL"),
                       timeout=40, message="labels that came first did not join their events")
        letters = await wait_for(partial(_dead_letters, kafka_bootstrap, topics), timeout=40,
                                 message="the label for an unknown event was not dead-lettered")
        await wait_for(partial(_equals, pool, 0, "SELECT count(*) FROM pending_labels"), timeout=20,
                       message="expired label still pending")
        assert rolling() is not None

    rows = await pool.fetch("SELECT event_id, prediction, actual, error FROM predictions")
    by_id = {e.event_id: e for e in truth}
    for row in rows:
        assert row["actual"] == pytest.approx(by_id[row["event_id"]].targets[TARGET])
        assert row["error"] == pytest.approx(row["prediction"] - row["actual"])
    mean_error = sum(abs(r["error"]) for r in rows) / len(rows)
    assert rolling() == pytest.approx(mean_error, rel=1e-6)  # 120 joined errors, window 500
    (letter,) = letters
    headers = read_headers(letter.headers)
    assert letter.key == b"no-such-event"
    assert "label for an unknown event" in headers[ERROR] and "no-such-event" in headers[ERROR]
    assert headers[ORIGIN_TOPIC] == topics.labels("people")


async def _equals(pool, expected: int, query: str) -> bool:  # noqa: ANN001
    return await _count(pool, query) == expected


async def _dead_letters(kafka: str, topics: Topics) -> list | None:
    letters = await read_all(kafka, topics.deadletter)
    return letters or None


async def test_bad_labels_are_dead_lettered_with_the_reason(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    settings = _consumer(kafka_bootstrap, database, topics, tmp_path)
    event = features_events(PEOPLE, 1, seed=3)[0]
    bad = [
        LabelEvent(event_id=event.event_id, stream="people", values={"age": 30}),  # not a target
        LabelEvent(event_id=event.event_id, stream="people", values={TARGET: -5.0}),  # below the minimum
        LabelEvent(event_id=event.event_id, stream="energy", values={TARGET: 5.0}),  # another stream's label
    ]
    async with running(partial(run_consumer, settings)):
        await produce(kafka_bootstrap, topics.labels("people"), bad)
        letters = await wait_for(partial(_at_least, kafka_bootstrap, topics, 3), timeout=40,
                                 message="bad labels not dead-lettered")
    reasons = sorted(read_headers(letter.headers)[ERROR] for letter in letters)
    assert any(reason.startswith("age: not a target of stream 'people'") for reason in reasons), reasons
    assert any(reason.startswith(f"{TARGET}:") and "minimum" in reason for reason in reasons), reasons
    assert any(reason.startswith("stream: label is for 'energy'") for reason in reasons), reasons
    assert await _count(database.pool, "SELECT count(*) FROM pending_labels") == 0


async def _at_least(kafka: str, topics: Topics, n: int) -> list | None:
    letters = await read_all(kafka, topics.deadletter)
    return letters if len(letters) >= n else None


async def test_the_trainer_learns_from_labels_that_came_later(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    truth = features_events(PEOPLE, 300, seed=5)
    await produce(kafka_bootstrap, topics.features("people"), _unlabelled(truth))
    await produce(kafka_bootstrap, topics.labels("people"), _labels(truth[:240]))
    settings = TrainerSettings(
        kafka_bootstrap_servers=kafka_bootstrap, database_url=database.dsn, artifact_dir=tmp_path,
        topic_prefix=topics.prefix, train_streams=("people",), train_interval=0, log_json=False,
    )
    command = TrainCommand(stream="people", task="income", algorithm="random_forest",
                           hyperparameters={"n_estimators": 20})
    async with running(partial(run_trainer, settings)):
        await produce(kafka_bootstrap, topics.commands, [command], keys=["people"])
        run = await wait_for(partial(_finished, database.pool, command.run_id), timeout=60, message="run not done")
    assert run.status == "done", run.error
    model = await registry.active_model(database.pool, "people", "income")
    assert model is not None and model.training_window["rows"] == 240  # the labelled ones, and only those
    assert model.metrics["r2"] > 0.5


async def _finished(pool, run_id: str):  # noqa: ANN001
    run = await registry.get_run(pool, run_id)
    return run if run is not None and run.status in ("done", "failed") else None
