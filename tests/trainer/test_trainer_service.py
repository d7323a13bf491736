"""The trainer against a real broker and PostgreSQL: scheduled training on
the window rebuilt from the log, train commands, the not-worse decision and
bad commands."""

from __future__ import annotations

import hashlib
from functools import partial
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from services.trainer.service import run as run_trainer
from services.trainer.settings import TrainerSettings
from shared.events import ModelPublished, TrainCommand
from shared.kafka.deadletter import ERROR, read_headers
from shared.ml import registry
from tests.streams import PEOPLE
from shared.topics import Topics
from tests.helpers import wait_for
from tests.live import Database, produce, read_all, running
from tests.ml.factory import register
from tests.ml.synthetic import features_events


def _settings(kafka: str, database: Database, topics: Topics, artifacts: Path, **overrides) -> TrainerSettings:
    values = {
        "kafka_bootstrap_servers": kafka,
        "database_url": database.dsn,
        "artifact_dir": artifacts,
        "topic_prefix": topics.prefix,
        "train_streams": ("people",),
        "train_interval": 0,
        "train_min_rows": 200,
        "log_json": False,
    }
    return TrainerSettings(**{**values, **overrides})


async def _finished(pool, run_id: str):
    run = await registry.get_run(pool, run_id)
    return run if run is not None and run.status in ("done", "failed") else None


async def _models_events(kafka: str, topics: Topics) -> list[ModelPublished]:
    return [ModelPublished.model_validate_json(r.value) for r in await read_all(kafka, topics.models)]


async def test_scheduled_training_on_the_window_rebuilt_from_the_log(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    # The events are on the topic before the trainer starts: it must rebuild
    # its window from the log, not from what it sees live.
    events = features_events(PEOPLE, 600, seed=1)
    await produce(kafka_bootstrap, topics.features("people"), events)
    settings = _settings(kafka_bootstrap, database, topics, tmp_path, train_interval=0.5, train_window_size=500)
    async with running(partial(run_trainer, settings)):
        model = await wait_for(
            lambda: registry.active_model(database.pool, "people", "income"), timeout=45, message="no model trained"
        )
    # Scheduled training uses the task's default algorithm on the newest 500 events.
    assert model.algorithm == PEOPLE.task("income").default.value
    assert model.version == 1 and model.active
    window = model.training_window
    assert window["topic"] == topics.features("people") and window["events"] == 500 and window["trigger"] == "schedule"
    assert sum(last - first + 1 for first, last in window["partitions"].values()) == 500
    assert model.rows_trained == 400  # 80 % of 500 usable rows
    assert model.metrics["r2"] > 0.8
    # The bundle on disk is the one registered.
    bundle = tmp_path / model.bundle_dir
    for name, digest in model.sha256.items():
        assert hashlib.sha256((bundle / name).read_bytes()).hexdigest() == digest
    meta = orjson.loads((bundle / "meta.json").read_bytes())
    assert meta["training_window"]["partitions"] == window["partitions"] and meta["version"] == 1
    run = await registry.get_run(database.pool, model.run_id)
    assert (run.status, run.trigger, run.decision, run.model_id) == ("done", "schedule", "activated", model.id)
    published = await _models_events(kafka_bootstrap, topics)
    assert [(e.model_id, e.version, e.active, e.sha256) for e in published][:1] == [(model.id, 1, True, model.sha256)]
    records = await read_all(kafka_bootstrap, topics.models)
    assert records[0].key == b"people/income"


async def test_commands_not_worse_decision_and_forced_activation(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    await produce(kafka_bootstrap, topics.features("people"), features_events(PEOPLE, 500, seed=2))
    settings = _settings(kafka_bootstrap, database, topics, tmp_path)
    good = TrainCommand(stream="people", task="income", algorithm="xgboost", hyperparameters={"n_estimators": 40})
    weak_request = {"algorithm": "random_forest", "hyperparameters": {"n_estimators": 2, "max_depth": 1}}
    weak = TrainCommand(stream="people", task="income", **weak_request)
    forced = TrainCommand(stream="people", task="income", force=True, **weak_request)
    # The gateway records a queued run before sending the command.
    await registry.queue_run(database.pool, good.run_id, "people", "income", "xgboost", {"by": "gateway"})
    async with running(partial(run_trainer, settings)):
        for command in (good, weak, forced):
            await produce(kafka_bootstrap, topics.commands, [command], keys=["people"])
            await wait_for(partial(_finished, database.pool, command.run_id), timeout=40, message=f"run {command.run_id}")
    first, second, third = [await registry.get_run(database.pool, c.run_id) for c in (good, weak, forced)]
    assert (first.status, first.decision, first.active_score) == ("done", "activated", None)
    assert first.request == {"by": "gateway"}  # the queued row was used, not replaced
    assert first.candidate_score > 0.8
    # The weak model is worse on the same held-out rows: recorded, not activated.
    assert (second.status, second.decision) == ("done", "rejected")
    assert second.candidate_score < second.active_score
    assert second.active_score > 0.8
    assert (third.status, third.decision) == ("done", "forced")
    models = {m.version: m for m in await registry.list_models(database.pool, "people", "income")}
    assert sorted(models) == [1, 2, 3]
    assert [models[v].active for v in (1, 2, 3)] == [False, False, True]
    assert models[2].run_id == weak.run_id and models[2].algorithm == "random_forest"
    # Only activations are published: the newest event per key is the active model.
    published = await _models_events(kafka_bootstrap, topics)
    assert [(e.version, e.active) for e in published] == [(1, True), (3, True)]


async def test_bad_commands_fail_their_run_and_the_trainer_goes_on(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    await produce(kafka_bootstrap, topics.features("people"), features_events(PEOPLE, 300, seed=3))
    labelled = features_events(PEOPLE, 120, seed=4, dataset_id="upload-1")
    # The upload's record bounds the scan from its time (less a margin).
    await database.pool.execute(
        """INSERT INTO datasets (id, stream, filename, size_bytes, sha256, rows_total, rows_accepted, rows_rejected)
           VALUES ('upload-1', 'people', 'people.csv', 1000, 'ab', 120, 120, 0)"""
    )
    await produce(kafka_bootstrap, topics.features("people"), labelled)
    settings = _settings(kafka_bootstrap, database, topics, tmp_path)
    bad = {
        "unknown stream": TrainCommand(stream="weather", task="rain"),
        "unknown task": TrainCommand(stream="people", task="age"),
        "wrong algorithm": TrainCommand(stream="people", task="income", algorithm="kmeans"),
        "bad hyperparameter": TrainCommand(stream="people", task="income", hyperparameters={"trees": 3}),
        "too few rows": TrainCommand(stream="people", task="income", window=10),
        "no such dataset": TrainCommand(stream="people", task="income", dataset_id="nope"),
    }
    expected = {
        "unknown stream": "unknown stream 'weather'",
        "unknown task": "has no task 'age'",
        "wrong algorithm": "cannot learn task 'income'",
        "bad hyperparameter": "unknown hyperparameter 'trees'",
        "too few rows": "10 usable rows",
        "no such dataset": "no features events of dataset nope",
    }
    dataset = TrainCommand(stream="people", task="income", dataset_id="upload-1", algorithm="mlp",
                           hyperparameters={"hidden_layer_sizes": [8], "epochs": 50})
    async with running(partial(run_trainer, settings)):
        await produce(kafka_bootstrap, topics.commands, list(bad.values()), keys=["x"] * len(bad))
        # Not a command at all: dead-lettered with the reason.
        producer_payload = b'{"stream": "people"}'
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(topics.commands, producer_payload)
        finally:
            await producer.stop()
        await produce(kafka_bootstrap, topics.commands, [dataset], keys=["people"])
        for name, command in [*bad.items(), ("dataset", dataset)]:
            await wait_for(partial(_finished, database.pool, command.run_id), timeout=40, message=f"{name} run")
        dead = await wait_for(lambda: read_all(kafka_bootstrap, topics.deadletter), timeout=20, message="no dead letter")
    for name, command in bad.items():
        run = await registry.get_run(database.pool, command.run_id)
        assert run.status == "failed", name
        assert expected[name] in run.error, (name, run.error)
    # The trainer survived all of it and trained on the uploaded dataset only.
    done = await registry.get_run(database.pool, dataset.run_id)
    assert done.status == "done", done.error
    model = await registry.get_model(database.pool, done.model_id)
    assert model.training_window["dataset_id"] == "upload-1"
    assert model.training_window["events"] == len(labelled) and model.rows_trained == 96
    assert model.algorithm == "mlp" and model.hyperparameters["hidden_layer_sizes"] == [8]
    assert len(dead) == 1 and dead[0].value == producer_payload
    assert "not a train command: task: Field required" in read_headers(dead[0].headers)[ERROR]


async def test_a_redelivered_command_does_not_train_twice(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    await produce(kafka_bootstrap, topics.features("people"), features_events(PEOPLE, 200, seed=5))
    settings = _settings(kafka_bootstrap, database, topics, tmp_path)
    command = TrainCommand(stream="people", task="income", algorithm="xgboost", hyperparameters={"n_estimators": 10})
    marker = TrainCommand(stream="people", task="income", algorithm="xgboost", hyperparameters={"n_estimators": 10})
    async with running(partial(run_trainer, settings)):
        await produce(kafka_bootstrap, topics.commands, [command, command, marker], keys=["people"] * 3)
        await wait_for(partial(_finished, database.pool, marker.run_id), timeout=40, message="marker run")
    run_ids = [m.run_id for m in await registry.list_models(database.pool, "people", "income")]
    assert sorted(run_ids) == sorted([command.run_id, marker.run_id])


async def test_a_restarted_trainer_clears_unfinished_writes_and_republishes_the_models_in_service(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    """As left by a trainer killed after its registry commit and before its
    models event, and mid-way through writing another bundle."""
    artifacts = tmp_path / "artifacts"
    champion = await register(database.pool, artifacts, PEOPLE, "income", n=300, seed=1,
                              hyperparameters={"n_estimators": 5})
    task_dir = artifacts / "people" / "income"
    unfinished = [task_dir / ".v2-k1ll3d", task_dir / ".stale-v1-123-abcd"]
    for directory in unfinished:
        directory.mkdir()
        (directory / "model.onnx").write_bytes(b"half")
    not_mine = artifacts / "energy" / "carbon" / ".v7-other"  # a stream another trainer writes
    not_mine.mkdir(parents=True)
    assert await _models_events(kafka_bootstrap, topics) == []

    async with running(partial(run_trainer, _settings(kafka_bootstrap, database, topics, artifacts))):
        events = await wait_for(lambda: _models_events(kafka_bootstrap, topics), timeout=30,
                                message="the models in service were not published again")
    assert [(e.model_id, e.version, e.active) for e in events] == [(champion.id, champion.version, True)]
    assert not any(directory.exists() for directory in unfinished)
    assert (task_dir / f"v{champion.version}").is_dir() and not_mine.is_dir()


async def test_a_command_delivered_after_the_gateway_abandoned_its_run_never_executes(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    """The gateway records the run, fails to send the command in time, marks
    the run abandoned and answers 503; the command reaches Kafka later."""
    await produce(kafka_bootstrap, topics.features("people"), features_events(PEOPLE, 200, seed=6))
    late = TrainCommand(stream="people", task="income", algorithm="xgboost", hyperparameters={"n_estimators": 10})
    marker = TrainCommand(stream="people", task="income", algorithm="xgboost", hyperparameters={"n_estimators": 10})
    pool = database.pool
    await registry.queue_run(pool, late.run_id, "people", "income", "xgboost", {})
    assert await registry.abandon_run(pool, late.run_id, "abandoned: Kafka did not acknowledge in 3 s")
    async with running(partial(run_trainer, _settings(kafka_bootstrap, database, topics, tmp_path))):
        await produce(kafka_bootstrap, topics.commands, [late, marker], keys=["people"] * 2)
        await wait_for(partial(_finished, pool, marker.run_id), timeout=40, message="marker run")
    assert [m.run_id for m in await registry.list_models(pool, "people", "income")] == [marker.run_id]
    run = await registry.get_run(pool, late.run_id)
    assert (run.status, run.model_id) == ("failed", None) and run.error.startswith("abandoned")


async def test_start_fails_scheduled_runs_a_killed_trainer_left_running(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    # What a trainer SIGKILLed mid-fit leaves: its scheduled run 'running'
    # (nothing delivers it again), a commanded one too (its command is
    # delivered again and runs it). Another stream's runs are another
    # replica's.
    pool = database.pool
    runs = {"scheduled": "r-scheduled", "queued": "r-queued", "commanded": "r-commanded", "other": "r-other"}
    await registry.queue_run(pool, runs["scheduled"], "people", "income", None, {}, "schedule")
    await registry.start_run(pool, runs["scheduled"])
    await registry.queue_run(pool, runs["queued"], "people", "income", None, {}, "schedule")
    await registry.queue_run(pool, runs["commanded"], "people", "income", None, {}, "command")
    await registry.start_run(pool, runs["commanded"])
    await registry.queue_run(pool, runs["other"], "energy", "carbon", None, {}, "schedule")
    await registry.start_run(pool, runs["other"])
    settings = _settings(kafka_bootstrap, database, topics, tmp_path)
    async with running(partial(run_trainer, settings)):
        await wait_for(partial(_finished, pool, runs["scheduled"]), timeout=30, message="the stale run still running")
    status = {name: await registry.get_run(pool, run_id) for name, run_id in runs.items()}
    for name in ("scheduled", "queued"):
        assert (status[name].status, status[name].error) == ("failed", "interrupted: the trainer stopped during the run")
        assert status[name].finished_at is not None
    assert status["commanded"].status == "running"
    assert status["other"].status == "running"
