"""Training from the lake: POST /train with an export id, an s3:// URL or a
local path trains on the exported features, the registry records where the
rows came from, and the gateway serves the model."""

from __future__ import annotations

from functools import partial
from typing import Any

import httpx

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.trainer.service import run as run_trainer
from services.trainer.settings import TrainerSettings
from shared.db import create_pool
from shared.infra.s3 import S3Endpoint
from tests.helpers import wait_for
from tests.lake.conftest import PressureRun
from tests.lake.exports import LakeExport
from tests.live import running
from tests.streams import PRESSURE

TASK = next(task for task in PRESSURE.tasks if task.alert)
TRAIN = {"stream": PRESSURE.name, "task": TASK.name, "algorithm": "xgboost", "hyperparameters": {"n_estimators": 20}}


async def _train(client: httpx.AsyncClient, source: str, **extra: Any) -> dict[str, Any]:
    answer = await client.post("/train", json={**TRAIN, "source": source, **extra})
    assert answer.status_code == 202, answer.text

    async def finished() -> dict[str, Any] | None:
        run = (await client.get(answer.json()["status_url"])).json()
        if run["status"] == "failed":
            raise AssertionError(f"training from {source} failed: {run['error']}")
        return run if run["status"] == "done" else None

    return await wait_for(finished, 180, interval=0.5, message=f"training from {source} finished")


async def test_a_model_trained_from_the_lake_is_registered_with_its_source_and_serves(
    pressure_run: PressureRun, lake_exports: dict[str, LakeExport], s3_server: S3Endpoint
) -> None:
    common = {"kafka_bootstrap_servers": pressure_run.kafka, "database_url": pressure_run.dsn,
              "topic_prefix": pressure_run.topics.prefix, "artifact_dir": pressure_run.artifact_dir, "log_json": False}
    trainer = TrainerSettings(**common, train_interval=0, train_streams=(PRESSURE.name,),
                              s3_endpoint_url=s3_server.url, aws_access_key_id=s3_server.access_key,
                              aws_secret_access_key=s3_server.secret_key, aws_region=s3_server.region)
    app = create_app(GatewaySettings(**common))
    s3, local = lake_exports["s3"], lake_exports["local"]
    async with running(partial(run_trainer, trainer)), app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway",
                                     timeout=60) as client:
            for body, field in (({"source": "0" * 32}, "source"), ({"source": "lake/relative"}, "source"),
                                ({"source": s3.export_id, "window": 100}, "source"),
                                ({"source": "ftp://somewhere/lake"}, "source")):
                refused = await client.post("/train", json={**TRAIN, **body})
                assert refused.status_code == 422, refused.text
                assert [error["field"] for error in refused.json()["errors"]] == [field]

            by_export = await _train(client, s3.export_id, force=True)
            by_url = await _train(client, s3.destination.name)
            by_path = await _train(client, local.destination.name)

            pool = await create_pool(pressure_run.dsn)
            try:
                trained = [by_export["model_id"], by_url["model_id"], by_path["model_id"]]
                models = {row["id"]: dict(row) for row in await pool.fetch(
                    "SELECT id, training_window FROM models WHERE id = ANY($1::bigint[])", trained)}
                active_id = await pool.fetchval(
                    "SELECT id FROM models WHERE active AND stream = $1 AND task = $2", PRESSURE.name, TASK.name)
            finally:
                await pool.close()
            window = models[by_export["model_id"]]["training_window"]
            assert window["source"] == "lake" and window["export_id"] == s3.export_id
            assert window["destination"] == s3.destination.name and window["files"] >= 1
            assert window["events"] == len(pressure_run.features)
            assert window["rows"] == len(pressure_run.features)  # every exported event was usable
            assert models[by_url["model_id"]]["training_window"]["lake"] == s3.destination.name
            assert models[by_path["model_id"]]["training_window"]["lake"] == local.destination.name
            assert models[by_path["model_id"]]["training_window"]["events"] == len(pressure_run.features)

            # The first was forced active, the others replace it unless worse:
            # a model trained from the lake is active, and the gateway serves it.
            assert active_id in trained
            served = app.state.gateway.models

            def serving() -> bool:
                model = served.get(PRESSURE.name, TASK.name)
                return model is not None and model.model_id == active_id

            await wait_for(serving, 60, message=f"the gateway serves model {active_id}")
            active = served.get(PRESSURE.name, TASK.name)
            answer = await client.post(f"/v1/streams/{PRESSURE.name}/predict",
                                       json={"task": TASK.name, "record": TASK.examples[0]})
            assert answer.status_code == 200, answer.text
            assert answer.json()["model_id"] == active.model_id
