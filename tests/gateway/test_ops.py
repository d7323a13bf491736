"""/health, /ready, /metrics and the API key."""

from __future__ import annotations

from shared.ml.registry import ModelRecord
from tests.gateway.conftest import Gateway, GatewayFactory
from tests.gateway.files import csv_bytes, energy_table


async def test_health_and_ready(gateway: Gateway, energy_models: dict[str, ModelRecord]) -> None:
    assert (await gateway.client.get("/health")).json() == {"status": "ok"}
    ready = await gateway.client.get("/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert (body["ready"], body["kafka"], body["postgres"], body["models_synced"]) == (True, True, True, True)
    assert {(m["task"], m["model_id"]) for m in body["models"]} == {(t, r.id) for t, r in energy_models.items()}


async def test_not_ready_without_postgres(gateway: Gateway) -> None:
    await gateway.state.pool.close()
    ready = await gateway.client.get("/ready")
    assert ready.status_code == 503
    assert (ready.json()["postgres"], ready.json()["kafka"], ready.json()["ready"]) == (False, True, False)


async def test_metrics_count_requests_by_route_template(
    gateway: Gateway, energy_models: dict[str, ModelRecord]
) -> None:
    for _ in range(3):
        assert (await gateway.client.post("/regress", json={"renewables_share_energy": 5})).status_code == 200
    await gateway.client.get("/models/12345")
    await gateway.client.get("/no/such/path/42")
    text = (await gateway.client.get("/metrics")).text
    assert 'fluxo_gateway_requests_total{method="GET",route="/models/{model_id}",status="404"}' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "/no/such/path" not in text
    assert 'fluxo_gateway_request_latency_seconds_count{method="POST",route="/regress"}' in text
    served = [line for line in text.splitlines()
              if line.startswith('fluxo_gateway_predictions_served_total{stream="energy",task="carbon"}')]
    assert served and float(served[0].split()[-1]) >= 3
    assert 'fluxo_served_model_version{service="gateway",stream="energy",task="cluster"} 1.0' in text


async def test_api_key_guards_upload_train_and_download(make_gateway: GatewayFactory) -> None:
    async with make_gateway(fluxo_api_key="s3cret-key", max_upload_bytes=2000) as gateway:
        record, _ = await gateway.add_model("carbon", publish=False)
        content = csv_bytes(energy_table(3))
        calls = [
            ("POST", "/upload", {"data": {"stream": "energy"}, "files": {"file": ("a.csv", content, "text/csv")}}),
            ("POST", "/train", {"json": {"stream": "energy", "task": "carbon"}}),
            ("GET", f"/models/{record.id}/download", {}),
            ("GET", f"/model/{record.id}", {}),
        ]
        for method, path, kwargs in calls:
            for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": "s3cret-key-but-longer"}):
                response = await gateway.client.request(method, path, headers=headers, **kwargs)
                assert response.status_code == 401, (path, headers, response.text)
                assert "X-API-Key" in response.json()["detail"]
            response = await gateway.client.request(method, path, headers={"X-API-Key": "s3cret-key"}, **kwargs)
            assert response.status_code in (200, 202), (path, response.text)
        # The key is checked before the body is read: an oversize upload without it is 401, not 413.
        big = csv_bytes(energy_table(500))
        response = await gateway.client.post("/upload", data={"stream": "energy"}, files={"file": ("b.csv", big)})
        assert response.status_code == 401
        # Reading and scoring stay open.
        assert (await gateway.client.get("/models")).status_code == 200
        assert (await gateway.client.post("/predict", json={})).status_code == 422


async def test_without_a_key_configured_nothing_asks_for_one(gateway: Gateway) -> None:
    response = await gateway.client.post("/train", json={"stream": "energy", "task": "carbon"})
    assert response.status_code == 202
