"""The trainer against file errors on the artifact directory, with a real
broker and PostgreSQL: a permission refused fails the run with the reason
(before, every OSError was transient: the command was retried forever and
the commands topic behind it blocked); a full disk is waited out."""

from __future__ import annotations

import errno
from functools import partial
from pathlib import Path

import pytest

from services.trainer import runs
from services.trainer.service import run as run_trainer
from services.trainer.settings import TrainerSettings
from shared.events import TrainCommand
from shared.ml import registry
from shared.topics import Topics
from tests.helpers import wait_for
from tests.live import Database, produce, running
from tests.ml.synthetic import features_events
from tests.streams import PEOPLE


async def _finished(pool, run_id: str):
    run = await registry.get_run(pool, run_id)
    return run if run is not None and run.status in ("done", "failed") else None


async def test_a_permission_refused_fails_the_run_and_the_next_command_runs(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await produce(kafka_bootstrap, topics.features("people"), features_events(PEOPLE, 300, seed=3))
    settings = TrainerSettings(
        kafka_bootstrap_servers=kafka_bootstrap, database_url=database.dsn, artifact_dir=tmp_path,
        topic_prefix=topics.prefix, train_streams=("people",), train_interval=0, train_min_rows=200, log_json=False,
    )
    real_write = runs.write_bundle
    refused = tmp_path / "people"
    disk_full = {"left": 2}

    def write(artifact_dir, meta, *args, **kwargs):
        # The tests run as root, which no file mode stops: the refusal and the
        # full disk are raised where the bundle is written, as the OS would.
        if meta.algorithm == "random_forest":
            raise PermissionError(errno.EACCES, "Permission denied", str(refused))
        if meta.algorithm == "xgboost" and disk_full["left"]:
            disk_full["left"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device", str(refused))
        return real_write(artifact_dir, meta, *args, **kwargs)

    monkeypatch.setattr(runs, "write_bundle", write)
    denied = TrainCommand(stream="people", task="income", algorithm="random_forest", force=True)
    full = TrainCommand(stream="people", task="income", algorithm="xgboost", force=True)
    async with running(partial(run_trainer, settings)):
        await produce(kafka_bootstrap, topics.commands, [denied, full], keys=["people", "people"])
        first = await wait_for(partial(_finished, database.pool, denied.run_id), timeout=60,
                               message="the run refused a permission never finished: retried forever")
        second = await wait_for(partial(_finished, database.pool, full.run_id), timeout=90,
                                message="the command behind the refused one never ran")
    assert first.status == "failed"
    assert "PermissionError" in first.error and "Permission denied" in first.error and str(refused) in first.error
    assert second.status == "done", second.error
    assert disk_full["left"] == 0, "a full disk is transient: the run was retried until it wrote"
