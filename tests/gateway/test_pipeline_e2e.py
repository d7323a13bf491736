"""Upload -> normalizer -> trainer -> /regress, with every service real.

The gateway runs in-process; the normalizer and the trainer run as their own
processes (``python -m services.normalizer`` / ``services.trainer``) on the
same broker, topic prefix, database and artifact directory. A CSV upload
trains the first carbon model, an XLSX upload the second; /regress answers
with each as soon as its ModelPublished event reaches the gateway.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import httpx

from tests.gateway.conftest import Gateway
from tests.gateway.files import csv_bytes, energy_table, xlsx_bytes
from tests.gateway.kafka_read import message_count
from tests.gateway.streams_live import worker_env
from tests.helpers import wait_for
from tests.processes import log_tail, service_process

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def _upload_and_train(gateway: Gateway, name: str, content: bytes, content_type: str, logs: list[Path]) -> dict:
    features = gateway.state.topics.features("energy")
    bootstrap = gateway.settings.kafka_bootstrap_servers
    before = await message_count(bootstrap, features)
    uploaded = await gateway.client.post("/upload", data={"stream": "energy"},
                                         files={"file": (name, content, content_type)})
    assert uploaded.status_code == 200, uploaded.text
    dataset = uploaded.json()
    assert dataset["rows_rejected"] == 0, dataset

    # The trainer scans the features topic for the dataset: all of it must be there.
    async def normalized() -> bool:
        return await message_count(bootstrap, features) >= before + dataset["rows_accepted"]

    await wait_for(normalized, 120, interval=0.5,
                   message=f"the normalizer did not normalize {name}:\n{log_tail(logs[0])}")
    started = await gateway.client.post(
        "/train", json={"stream": "energy", "task": "carbon", "dataset_id": dataset["dataset_id"], "force": True}
    )
    assert started.status_code == 202, started.text

    async def finished() -> dict | None:
        run = (await gateway.client.get(started.json()["status_url"])).json()
        return run if run["status"] in ("done", "failed") else None

    run = await wait_for(finished, 180, interval=0.5, message=f"the run did not finish:\n{log_tail(logs[1])}")
    assert run["status"] == "done", run
    assert run["model_id"] is not None and run["metrics"], run
    return run


async def test_uploads_flow_through_normalizer_and_trainer_into_regress(gateway: Gateway, tmp_path: Path) -> None:
    env = worker_env(gateway)
    logs = [tmp_path / "normalizer.log", tmp_path / "trainer.log"]
    with ExitStack() as stack:
        stack.enter_context(service_process("services.normalizer", {**env, "NORMALIZER_STREAMS": "energy"}, logs[0]))
        stack.enter_context(service_process(
            "services.trainer",
            {**env, "TRAIN_STREAMS": "energy", "TRAIN_INTERVAL": "0", "TRAIN_MIN_ROWS": "20"},
            logs[1],
        ))
        first = await _upload_and_train(gateway, "energy.csv", csv_bytes(energy_table(300, seed=1)), "text/csv", logs)

        async def answers_with(model_id: int) -> httpx.Response | None:
            response = await gateway.client.post("/regress", json={"renewables_share_energy": "0.480"})
            return response if response.status_code == 200 and response.json()["model_id"] == model_id else None

        response = await wait_for(lambda: answers_with(first["model_id"]), 60, interval=0.3,
                                  message="/regress never answered with the CSV-trained model")
        body = response.json()
        # Trained on data where carbon intensity falls as renewables rise.
        low = (await gateway.client.post("/regress", json={"renewables_share_energy": 95})).json()
        assert body["carbon_intensity_elec"] > low["carbon_intensity_elec"]

        second = await _upload_and_train(
            gateway, "energy.xlsx", xlsx_bytes(energy_table(200, seed=2)), XLSX_TYPE, logs
        )
        assert second["model_id"] != first["model_id"]
        response = await wait_for(lambda: answers_with(second["model_id"]), 60, interval=0.3,
                                  message="/regress never answered with the XLSX-trained model")
        assert response.json()["model_version"] > body["model_version"]
