"""The registry routes: /models, /models/{id}, downloads with their sha256."""

from __future__ import annotations

import hashlib

from shared.ml.bundle import JOBLIB_FILE
from shared.ml.registry import ModelRecord
from tests.gateway.conftest import Gateway


async def test_models_are_listed_filtered_and_shown(gateway: Gateway, energy_models: dict[str, ModelRecord]) -> None:
    listed = (await gateway.client.get("/models")).json()
    assert {m["id"] for m in listed} == {r.id for r in energy_models.values()}
    carbon = (await gateway.client.get("/models", params={"stream": "energy", "task": "carbon"})).json()
    assert [m["id"] for m in carbon] == [energy_models["carbon"].id]
    model = carbon[0]
    assert (model["version"], model["algorithm"], model["active"], model["loaded"]) == (1, "random_forest", True, True)
    # 400 events made the bundle; a fifth of them were held out, never trained on.
    assert model["rows"] == 320 and "r2" in model["metrics"]
    assert (model["alias"], model["monitoring"]) == ("champion", {})
    assert model["features"] == ["renewables_share_energy", "fossil_share_energy"]
    assert (await gateway.client.get("/models", params={"stream": "people"})).json() == []

    one = await gateway.client.get(f"/models/{energy_models['cluster'].id}")
    assert one.status_code == 200 and one.json()["task"] == "cluster"
    assert (await gateway.client.get("/models/999999")).status_code == 404
    bad = await gateway.client.get("/models", params={"stream": "weather"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "stream"
    assert (await gateway.client.get("/models/not-a-number")).status_code == 422


async def test_an_older_model_is_listed_but_not_loaded(gateway: Gateway, energy_models: dict[str, ModelRecord]) -> None:
    newer, _ = await gateway.add_model("carbon", seed=3)
    await gateway.serving("carbon", newer.id)
    by_id = {m["id"]: m for m in (await gateway.client.get("/models", params={"task": "carbon"})).json()}
    assert (by_id[newer.id]["active"], by_id[newer.id]["loaded"]) == (True, True)
    old = by_id[energy_models["carbon"].id]
    assert (old["active"], old["loaded"]) == (False, False)


async def test_download_sends_the_verified_artifact_with_its_sha256(
    gateway: Gateway, energy_models: dict[str, ModelRecord]
) -> None:
    record = energy_models["carbon"]
    on_disk = (gateway.settings.artifact_dir / record.bundle_dir / JOBLIB_FILE).read_bytes()
    for path in (f"/models/{record.id}/download", f"/model/{record.id}"):
        response = await gateway.client.get(path)
        assert response.status_code == 200, response.text
        assert response.content == on_disk
        digest = hashlib.sha256(response.content).hexdigest()
        assert response.headers["x-content-sha256"] == digest == record.sha256[JOBLIB_FILE]
        assert 'filename="energy-carbon-v1.joblib"' in response.headers["content-disposition"]
    assert (await gateway.client.get("/models/424242/download")).status_code == 404


async def test_a_tampered_artifact_is_not_sent(gateway: Gateway, energy_models: dict[str, ModelRecord]) -> None:
    record = energy_models["cluster"]
    path = gateway.settings.artifact_dir / record.bundle_dir / JOBLIB_FILE
    path.write_bytes(path.read_bytes() + b"tampered")
    response = await gateway.client.get(f"/models/{record.id}/download")
    assert response.status_code == 409
    assert "integrity" in response.json()["detail"] and "tampered" not in response.text
    path.unlink()
    assert (await gateway.client.get(f"/model/{record.id}")).status_code == 409
