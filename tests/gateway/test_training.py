"""POST /train and GET /train/{run_id} against a real gateway."""

from __future__ import annotations

from services.gateway.schemas import TrainAccepted
from shared.events import TrainCommand
from shared.ml import registry
from tests.gateway.conftest import Gateway
from tests.gateway.files import csv_bytes, energy_table
from tests.gateway.kafka_read import read_records


async def test_train_sends_a_command_and_the_run_can_be_followed(gateway: Gateway) -> None:
    request = {"stream": "energy", "task": "carbon", "algorithm": "xgboost",
               "hyperparameters": {"n_estimators": 50}, "window": 500, "test_size": 0.25, "force": True}
    response = await gateway.client.post("/train", json=request)
    assert response.status_code == 202, response.text
    accepted = response.json()
    TrainAccepted.model_validate(accepted, strict=True)
    run_id = accepted["run_id"]
    assert accepted == {"run_id": run_id, "status": "queued", "stream": "energy", "task": "carbon",
                        "status_url": f"/train/{run_id}"}

    [record] = await read_records(gateway.settings.kafka_bootstrap_servers, gateway.state.topics.commands, 1)
    command = TrainCommand.model_validate_json(record.value)
    assert record.key == b"energy/carbon"
    assert (command.run_id, command.stream, command.task, command.algorithm) == (run_id, "energy", "carbon", "xgboost")
    assert (command.window, command.test_size, command.force) == (500, 0.25, True)
    assert command.hyperparameters == {"n_estimators": 50}

    status = (await gateway.client.get(accepted["status_url"])).json()
    assert (status["status"], status["metrics"], status["algorithm"]) == ("queued", None, "xgboost")

    # What the trainer does with the run, seen through the gateway.
    await registry.start_run(gateway.state.pool, run_id)
    assert (await gateway.client.get(f"/train/{run_id}")).json()["status"] == "running"
    await registry.finish_run(gateway.state.pool, run_id, model_id=None, metrics={"r2": 0.93, "mae": 21.5},
                              decision="rejected: worse than the active model", candidate_score=0.93, active_score=0.95)
    done = (await gateway.client.get(f"/train/{run_id}")).json()
    assert (done["status"], done["metrics"], done["decision"]) == (
        "done", {"r2": 0.93, "mae": 21.5}, "rejected: worse than the active model")
    assert done["finished_at"] is not None


async def test_train_on_an_uploaded_dataset(gateway: Gateway) -> None:
    uploaded = await gateway.client.post(
        "/upload", data={"stream": "energy"}, files={"file": ("e.csv", csv_bytes(energy_table(20)), "text/csv")}
    )
    dataset_id = uploaded.json()["dataset_id"]
    request = {"stream": "energy", "task": "cluster", "dataset_id": dataset_id}
    response = await gateway.client.post("/train", json=request)
    assert response.status_code == 202, response.text
    [record] = await read_records(gateway.settings.kafka_bootstrap_servers, gateway.state.topics.commands, 1)
    assert TrainCommand.model_validate_json(record.value).dataset_id == dataset_id

    request = {"stream": "people", "task": "income", "dataset_id": dataset_id}
    wrong_stream = await gateway.client.post("/train", json=request)
    assert wrong_stream.status_code == 422
    assert wrong_stream.json()["errors"] == [
        {"field": "dataset_id", "reason": f"dataset {dataset_id!r} belongs to stream 'energy', not 'people'"}
    ]


async def test_bad_train_requests_are_422_and_unknown_runs_404(gateway: Gateway) -> None:
    cases = [
        ({"stream": "weather", "task": "carbon"}, "stream"),
        ({"stream": "energy", "task": "income"}, "task"),
        ({"stream": "energy", "task": "carbon", "algorithm": "kmeans"}, "algorithm"),
        ({"stream": "energy", "task": "carbon", "window": 100, "dataset_id": "x"}, "window"),
        ({"stream": "energy", "task": "carbon", "dataset_id": "nope"}, "dataset_id"),
        ({"stream": "energy", "task": "carbon", "window": 5}, "window"),
        ({"stream": "energy", "task": "carbon", "test_size": 1.5}, "test_size"),
        ({"stream": "energy", "task": "carbon", "hyperparameters": {"x": "y" * 5000}}, "hyperparameters"),
        ({"stream": "energy", "task": "carbon", "colour": "red"}, "colour"),
        ({"task": "carbon"}, "stream"),
    ]
    for body, field in cases:
        response = await gateway.client.post("/train", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["errors"][0]["field"] == field, (body, response.json())
    assert await gateway.state.pool.fetchval("SELECT count(*) FROM training_runs") == 0
    missing = await gateway.client.get("/train/does-not-exist")
    assert missing.status_code == 404 and "does-not-exist" in missing.json()["detail"]
