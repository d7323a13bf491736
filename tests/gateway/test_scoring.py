"""/predict, /regress and /v1/streams/{stream}/predict against a real gateway."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from prometheus_client import REGISTRY

from services.gateway.schemas import BatchPredictAnswer, ClusterAnswer, RegressionAnswer
from shared.ml.registry import ModelRecord
from tests.gateway.conftest import Gateway, GatewayFactory

ORIGINAL_PREDICT = {
    "renewables_share_energy": "0.053", "fossil_share_energy": "99.947", "carbon_intensity_elec": "508.162"
}
ORIGINAL_REGRESS = {"renewables_share_energy": "0.480"}


async def test_predict_answers_the_original_flask_body(gateway: Gateway, energy_models: dict[str, ModelRecord]) -> None:
    response = await gateway.client.post("/predict", json=ORIGINAL_PREDICT)
    assert response.status_code == 200, response.text
    body = response.json()
    ClusterAnswer.model_validate(body, strict=True)  # the orjson answer matches its documented schema
    model = gateway.state.models.get("energy", "cluster")
    assert model is not None
    assert model.nearest is not None  # numpy answers, checked against the ONNX graph below
    expected = model.score_onnx(np.array([[0.053, 99.947, 508.162]], dtype=np.float32))
    assert body["category"] == int(expected.prediction[0])
    assert body["model_version"] == energy_models["cluster"].version
    assert body["model_id"] == energy_models["cluster"].id
    assert set(body["center"]) == {"renewables_share_energy", "fossil_share_energy", "carbon_intensity_elec"}
    centres = model.meta.centers
    assert centres is not None
    assert body["center"] == dict(zip(model.meta.features, centres[body["category"]], strict=True))
    # Nearly all fossil and carbon-heavy: the dirtiest category (numbered by rising carbon intensity).
    assert body["category"] == len(centres) - 1


async def test_regress_answers_the_original_flask_body(gateway: Gateway, energy_models: dict[str, ModelRecord]) -> None:
    response = await gateway.client.post("/regress", json=ORIGINAL_REGRESS)
    assert response.status_code == 200, response.text
    body = response.json()
    RegressionAnswer.model_validate(body, strict=True)
    model = gateway.state.models.get("energy", "carbon")
    assert model is not None
    # fossil_share_energy was left out: the variant trained without it answers,
    # not the full model with a mean filled in.
    variant = model.variant_for(frozenset({"fossil_share_energy"}))
    assert variant is not None and variant.features == ["renewables_share_energy"]
    expected = variant.score_onnx(np.array([[0.48]], dtype=np.float32)).prediction[0]
    assert body["carbon_intensity_elec"] == pytest.approx(expected, rel=1e-5)
    assert body["prediction"] == body["carbon_intensity_elec"]
    assert body["model_version"] == energy_models["carbon"].version
    # Almost no renewables: carbon intensity near the top of the data's range
    # (900 gCO2/kWh at none, falling with renewables and nuclear).
    assert body["carbon_intensity_elec"] > 400
    # The answer falls as the renewables given rise.
    answers = [(await gateway.client.post("/regress", json={"renewables_share_energy": share})).json()
               for share in (0, 25, 50, 75, 100)]
    intensities = [answer["carbon_intensity_elec"] for answer in answers]
    assert intensities == sorted(intensities, reverse=True) and intensities[0] - intensities[-1] > 300, intensities


async def test_numbers_and_numeric_strings_score_alike(gateway: Gateway, energy_models: dict[str, ModelRecord]) -> None:
    as_numbers = {name: float(value) for name, value in ORIGINAL_PREDICT.items()}
    first = (await gateway.client.post("/predict", json=ORIGINAL_PREDICT)).json()
    second = (await gateway.client.post("/predict", json=as_numbers)).json()
    assert first == second


BAD_BODIES = [
    ({"fossil_share_energy": 1, "carbon_intensity_elec": 2}, "renewables_share_energy", "missing"),
    ({**ORIGINAL_PREDICT, "fossil_share_energy": None}, "fossil_share_energy", "missing"),
    ({**ORIGINAL_PREDICT, "fossil_share_energy": "NaN"}, "fossil_share_energy", "not a number (NaN)"),
    ({**ORIGINAL_PREDICT, "fossil_share_energy": "inf"}, "fossil_share_energy", "infinite value"),
    ({**ORIGINAL_PREDICT, "renewables_share_energy": 101}, "renewables_share_energy", "above maximum 100"),
    ({**ORIGINAL_PREDICT, "carbon_intensity_elec": -1}, "carbon_intensity_elec", "below minimum 0"),
    ({**ORIGINAL_PREDICT, "carbon_intensity_elec": "lots"}, "carbon_intensity_elec", "expected a number, got 'lots'"),
    ({**ORIGINAL_PREDICT, "carbon_intensity_elec": True}, "carbon_intensity_elec", "expected a number, got a boolean"),
    ({**ORIGINAL_PREDICT, "carbon_intensity_elec": [1]}, "carbon_intensity_elec", "expected a number, got list"),
    ([1, 2, 3], "body", "expected a JSON object, got an array"),
    ("text", "body", "expected a JSON object, got a string"),
]


async def test_predict_bad_input_is_422_naming_field_and_reason(gateway: Gateway) -> None:
    # Input is checked before the model is looked up, so no model is needed here.
    for body, field, reason in BAD_BODIES:
        response = await gateway.client.post("/predict", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["errors"] == [{"field": field, "reason": reason}], body
    body = {"renewables_share_energy": "0.48", "fossil_share_energy": 120}
    response = await gateway.client.post("/regress", json=body)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "fossil_share_energy", "reason": "above maximum 100"}]


async def test_unparseable_bodies_are_422(gateway: Gateway) -> None:
    for path, content in itertools.product(
        ("/predict", "/regress"), (b"", b"  ", b"{not json", b"NaN", b'{"renewables_share_energy": 1e400}', b"\xff\xfe")
    ):
        response = await gateway.client.post(path, content=content, headers={"content-type": "application/json"})
        assert response.status_code == 422, (path, content, response.text)
        assert response.json()["errors"][0]["field"] == "body"


async def test_no_model_yet_is_503_saying_how_to_train(gateway: Gateway) -> None:
    response = await gateway.client.post("/regress", json=ORIGINAL_REGRESS)
    assert response.status_code == 503
    body = response.json()
    assert (body["stream"], body["task"]) == ("energy", "carbon")
    assert body["how_to_train"]["path"] == "/train"
    assert body["how_to_train"]["body"] == {"stream": "energy", "task": "carbon"}
    assert "POST /train" in body["detail"]
    response = await gateway.client.post("/predict", json=ORIGINAL_PREDICT)
    assert response.status_code == 503 and response.json()["task"] == "cluster"


async def test_a_new_model_event_hot_reloads_serving(gateway: Gateway, energy_models: dict[str, ModelRecord]) -> None:
    before = (await gateway.client.post("/regress", json=ORIGINAL_REGRESS)).json()
    record, _ = await gateway.add_model("carbon", seed=7)
    await gateway.serving("carbon", record.id)
    after = (await gateway.client.post("/regress", json=ORIGINAL_REGRESS)).json()
    assert (before["model_version"], after["model_version"]) == (record.version - 1, record.version)
    assert after["model_id"] == record.id
    metrics = (await gateway.client.get("/metrics")).text
    assert (f'fluxo_served_model_version{{service="gateway",stream="energy",task="carbon"}} '
            f'{float(record.version)}') in metrics


async def test_batch_predict_scores_records_in_one_call(
    gateway: Gateway, energy_models: dict[str, ModelRecord]
) -> None:
    records = [{"renewables_share_energy": r} for r in (1, "25", 50.5, 90)]
    response = await gateway.client.post("/v1/streams/energy/predict", json={"task": "carbon", "records": records})
    assert response.status_code == 200, response.text
    body = response.json()
    BatchPredictAnswer.model_validate(body, strict=True)
    assert (body["stream"], body["task"], body["model_id"]) == ("energy", "carbon", energy_models["carbon"].id)
    singles = [
        (await gateway.client.post("/regress", json=record)).json()["prediction"] for record in records
    ]
    assert [row["prediction"] for row in body["predictions"]] == pytest.approx(singles, rel=1e-5)
    # Carbon intensity falls as renewables rise.
    assert singles[0] > singles[-1]

    one = await gateway.client.post("/v1/streams/energy/predict", json={"task": "cluster", "record": ORIGINAL_PREDICT})
    assert one.status_code == 200, one.text
    single = (await gateway.client.post("/predict", json=ORIGINAL_PREDICT)).json()
    assert one.json()["predictions"][0]["prediction"] == single["category"]


BAD_BATCHES = [
    ("/v1/streams/nope/predict", {"record": {}}, "stream"),
    ("/v1/streams/energy/predict", {"record": ORIGINAL_PREDICT}, "task"),
    ("/v1/streams/energy/predict", {"task": "nope", "record": {}}, "task"),
    ("/v1/streams/energy/predict", {"task": "carbon"}, "records"),
    ("/v1/streams/energy/predict", {"task": "carbon", "records": []}, "records"),
    ("/v1/streams/energy/predict", {"task": "carbon", "records": [{}] * 6}, "records"),
    ("/v1/streams/energy/predict", {"task": "carbon", "records": "x"}, "records"),
    ("/v1/streams/energy/predict", {"task": "carbon", "records": [1]}, "records.0"),
    ("/v1/streams/energy/predict", {"task": "carbon", "record": {}, "extra": 1}, "extra"),
]


async def test_batch_predict_bad_requests_are_422(make_gateway: GatewayFactory) -> None:
    async with make_gateway(max_batch_rows=5) as gateway:
        for path, body, field in BAD_BATCHES:
            response = await gateway.client.post(path, json=body)
            assert response.status_code == 422, (path, body, response.text)
            assert response.json()["errors"][0]["field"] == field, (path, body)


async def test_batch_predict_reports_every_bad_record(gateway: Gateway, energy_models: dict[str, ModelRecord]) -> None:
    records = [{"renewables_share_energy": 10}, {"renewables_share_energy": "x"}, {}, {"renewables_share_energy": 200}]
    response = await gateway.client.post("/v1/streams/energy/predict", json={"task": "carbon", "records": records})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"index": 1, "field": "renewables_share_energy", "reason": "expected a number, got 'x'"},
        {"index": 2, "field": "renewables_share_energy", "reason": "missing"},
        {"index": 3, "field": "renewables_share_energy", "reason": "above maximum 100"},
    ]


async def test_a_bundle_failing_its_sha256_check_is_not_served(
    gateway: Gateway, energy_models: dict[str, ModelRecord]
) -> None:
    def failed_loads() -> float:
        labels = {"service": "gateway", "stream": "energy", "task": "carbon", "outcome": "refused"}
        return REGISTRY.get_sample_value("fluxo_model_loads_total", labels) or 0.0

    failed_before = failed_loads()
    record, bundle = await gateway.add_model("carbon", seed=9, publish=False)
    onnx_path = gateway.settings.artifact_dir / bundle.bundle_dir / "model.onnx"
    onnx_path.write_bytes(onnx_path.read_bytes() + b"\0")
    await gateway.state.models.sync(gateway.state.pool)
    served = gateway.state.models.get("energy", "carbon")
    assert served is not None and served.model_id == energy_models["carbon"].id != record.id
    assert failed_loads() == failed_before + 1
    answer = await gateway.client.post("/regress", json=ORIGINAL_REGRESS)
    assert answer.json()["model_id"] == energy_models["carbon"].id


async def test_a_json_body_over_the_limit_is_413_before_it_is_read(make_gateway: GatewayFactory) -> None:
    from collections.abc import AsyncIterator as _Chunks

    async with make_gateway(max_json_body_bytes=4096) as gateway:
        big = {"task": "carbon", "records": [{"renewables_share_energy": 1.0}] * 500}
        response = await gateway.client.post("/v1/streams/energy/predict", json=big)
        assert response.status_code == 413, response.text
        assert response.json()["limit_bytes"] == 4096 and "MAX_JSON_BODY_BYTES" in response.json()["detail"]
        sent = 0

        async def chunked() -> _Chunks[bytes]:
            nonlocal sent
            yield b'{"task": "carbon", "records": ['
            for _ in range(10_000):
                sent += 30
                yield b'{"renewables_share_energy": 1},'
            yield b"{}]}"

        response = await gateway.client.post("/predict", content=chunked(), headers={"content-type": "application/json"})
        assert response.status_code == 413, response.text
        assert response.json()["limit_bytes"] == 4096
        # A small body still goes through to validation.
        small = await gateway.client.post("/regress", json={"renewables_share_energy": "x"})
        assert small.status_code in (422, 503), small.text
