"""/v1/streams against a real gateway: registration answers, every refusal
named, and nothing half-registered when Kafka fails mid-way."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient

from shared.infra.ports import free_port
from shared.kafka.clients import make_producer
from shared.kafka.guarded import GuardedProducer
from tests.gateway.conftest import Gateway, GatewayFactory
from tests.helpers import wait_for

WEATHER = {
    "name": "weather",
    "key": "station",
    "fields": [{"name": "station", "type": "str"}, {"name": "temp_c", "type": "float", "minimum": -90, "maximum": 60},
               {"name": "rain_mm", "type": "float", "minimum": 0, "required": False}],
    "tasks": [{"name": "rain", "kind": "regression", "target": "rain_mm", "features": ["temp_c"]}],
}


async def _topics(gateway: Gateway) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=gateway.settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_registration_answers_and_lists(gateway: Gateway) -> None:
    listed = {s["name"]: s for s in (await gateway.client.get("/v1/streams")).json()}
    assert {"energy", "pressure", "people", "consumption"} <= set(listed)
    assert all(s["version"] == 1 and s["status"] == "active" for s in listed.values())  # built-ins, registered

    created = await gateway.client.post("/v1/streams", json=WEATHER)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["version"], body["topics"]["raw"]) == (1, gateway.state.topics.raw("weather"))
    wanted = {gateway.state.topics.raw("weather"), gateway.state.topics.features("weather")}

    async def created_topics() -> bool:
        return wanted <= await _topics(gateway)

    await wait_for(created_topics, 30, message="the stream's topics were not created")
    shown = (await gateway.client.get("/v1/streams/weather")).json()
    assert [v["version"] for v in shown["versions"]] == [1]
    assert [i["name"] for i in shown["inputs"]["rain"]] == ["temp_c"]
    stored = await gateway.state.pool.fetchval("SELECT count(*) FROM streams WHERE name = 'weather'")
    assert stored == 1
    schema = (await gateway.client.get("/v1/streams/schema")).json()
    assert schema["title"].startswith("Fluxo stream declaration")
    assert (await gateway.client.get("/v1/streams/nowhere")).status_code == 404


async def test_every_problem_is_a_422_naming_its_json_path(gateway: Gateway) -> None:
    bad = {**WEATHER, "name": "Bad.Name", "tasks": [{**WEATHER["tasks"][0], "target": "snow"}]}
    response = await gateway.client.post("/v1/streams", json=bad)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert "name" in fields
    cyclic = {**WEATHER, "derived": [{"name": "a", "expression": "b * 2"}, {"name": "b", "expression": "a + temp_c"}]}
    response = await gateway.client.post("/v1/streams", json=cyclic)
    assert response.status_code == 422 and "cycle" in response.text
    zero = {**WEATHER, "derived": [{"name": "a", "expression": "temp_c / (3 - 3)"}]}
    response = await gateway.client.post("/v1/streams", json=zero)
    assert response.status_code == 422
    assert response.json()["errors"][0] == {"field": "derived[0].expression",
                                            "reason": response.json()["errors"][0]["reason"]}
    assert "division by zero" in response.json()["errors"][0]["reason"]
    for body, content_type in ((b"", "application/json"), (b"name: [", "application/yaml"), (b"[1, 2]", "application/json")):
        response = await gateway.client.post("/v1/streams", content=body, headers={"Content-Type": content_type})
        assert response.status_code == 422, (body, response.text)
    # Nothing was registered by any of them.
    assert await gateway.state.pool.fetchval("SELECT count(*) FROM streams WHERE name IN ('weather', 'Bad.Name')") == 0


async def test_a_failed_publication_leaves_no_row_and_no_topic(make_gateway: GatewayFactory) -> None:
    async with make_gateway() as gateway:
        # A producer with no broker behind it: Kafka takes nothing from this gateway any more.
        gateway.state.publisher = GuardedProducer(lambda: make_producer(f"127.0.0.1:{free_port()}", "nowhere"), "nowhere")
        response = await gateway.client.post("/v1/streams", json=WEATHER)
        assert response.status_code == 503, response.text
        assert "nothing was done" in response.json()["detail"]
        assert await gateway.state.pool.fetchval("SELECT count(*) FROM streams WHERE name = 'weather'") == 0
        ours = {name for name, _ in gateway.state.topics.of_stream("weather")}

        async def deleted() -> bool:
            return not ours & await _topics(gateway)

        await wait_for(deleted, 30, message="the topics this registration created were not deleted")
        assert (await gateway.client.get("/v1/streams/weather")).status_code == 404


async def test_the_api_key_guards_what_changes_things(make_gateway: GatewayFactory) -> None:
    async with make_gateway(fluxo_api_key="k3y") as gateway:
        for method, path, body in (("POST", "/v1/streams", WEATHER), ("DELETE", "/v1/streams/energy", None),
                                   ("POST", "/v1/streams/energy/events", {"record": {}})):
            response = await gateway.client.request(method, path, json=body)
            assert response.status_code == 401, (method, path)
        assert (await gateway.client.get("/v1/streams")).status_code == 200
        keyed = await gateway.client.post("/v1/streams", json=WEATHER, headers={"X-API-Key": "k3y"})
        assert keyed.status_code == 201
