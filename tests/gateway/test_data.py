"""/predictions, /alerts and /sensors read what the consumer writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.gateway.conftest import Gateway


async def _insert_predictions(gateway: Gateway) -> None:
    now = datetime.now(UTC)
    rows = [
        ("e1", "energy", "carbon", 1, 400.0, 410.0, now - timedelta(minutes=10)),
        ("e2", "energy", "carbon", 1, 300.0, None, now - timedelta(minutes=5)),
        ("e3", "energy", "cluster", 2, 1.0, None, now - timedelta(minutes=1)),
        ("p1", "people", "income", 1, 50000.0, 48000.0, now),
    ]
    await gateway.state.pool.executemany(
        """INSERT INTO predictions (event_id, stream, task, model_version, model_id, key, status, prediction,
                                    actual, error, scored_at)
           VALUES ($1, $2, $3, $4, 1, 'k', 'scored', $5::float8, $6::float8, $6::float8 - $5::float8, $7)""",
        rows,
    )


async def test_predictions_newest_first_with_filters(gateway: Gateway) -> None:
    await _insert_predictions(gateway)
    everything = (await gateway.client.get("/predictions")).json()
    assert [p["event_id"] for p in everything] == ["p1", "e3", "e2", "e1"]
    energy = (await gateway.client.get("/predictions", params={"stream": "energy", "task": "carbon"})).json()
    assert [p["event_id"] for p in energy] == ["e2", "e1"]
    assert energy[1]["actual"] == 410.0 and energy[1]["error"] == 10.0
    since = (datetime.now(UTC) - timedelta(minutes=3)).isoformat()
    recent = (await gateway.client.get("/predictions", params={"since": since})).json()
    assert [p["event_id"] for p in recent] == ["p1", "e3"]
    assert len((await gateway.client.get("/predictions", params={"limit": 1})).json()) == 1
    for params in ({"stream": "weather"}, {"stream": "energy", "task": "anomaly"}, {"limit": 0},
                   {"limit": 5000}, {"since": "yesterday"}):
        response = await gateway.client.get("/predictions", params=params)
        assert response.status_code == 422, (params, response.text)


async def test_alerts_and_sensors(gateway: Gateway) -> None:
    now = datetime.now(UTC)
    await gateway.state.pool.executemany(
        """INSERT INTO entity_state (stream, key, area, latitude, longitude, kind, state, last_score, alert, reading_at)
           VALUES ('pressure', $1, $2, $3, $4, 'residential', $5, $6, $7, $8)""",
        [
            ("S-01", "Centro", -23.55, -46.63,
             {"pressure_mca": 12.0, "media_hora": 12.5, "media_30d": 30.0, "std_30d": 1.5}, 0.97, True, now),
            ("S-02", "Vila Nova", -23.56, -46.64,
             {"pressure_mca": 31.0, "media_hora": 30.8, "media_30d": 30.0, "std_30d": 1.5}, 0.02, False, now),
        ],
    )
    await gateway.state.pool.executemany(
        """INSERT INTO alerts (event_id, stream, task, key, area, latitude, longitude, value, score,
                               model_version, created_at)
           VALUES ($1, 'pressure', 'anomaly', $2, 'Centro', -23.55, -46.63, $3, 0.97, 1, $4)""",
        [("a1", "S-01", 12.0, now - timedelta(hours=30)), ("a2", "S-01", 11.0, now - timedelta(hours=1)),
         ("a3", "S-01", 12.5, now)],
    )
    alerts = (await gateway.client.get("/alerts", params={"stream": "pressure"})).json()
    assert [a["event_id"] for a in alerts] == ["a3", "a2", "a1"]
    since = (now - timedelta(hours=2)).isoformat()
    recent = (await gateway.client.get("/alerts", params={"since": since})).json()
    assert [a["event_id"] for a in recent] == ["a3", "a2"]
    assert (alerts[0]["key"], alerts[0]["area"], alerts[0]["task"]) == ("S-01", "Centro", "anomaly")
    assert (await gateway.client.get("/alerts", params={"stream": "weather"})).status_code == 422

    sensors = {s["key"]: s for s in (await gateway.client.get("/sensors")).json()}
    assert set(sensors) == {"S-01", "S-02"}
    alerting = sensors["S-01"]
    state = (alerting["alert"], alerting["alerts_24h"], alerting["media_hora"], alerting["std_30d"])
    assert state == (True, 2, 12.5, 1.5)
    assert (alerting["latitude"], alerting["longitude"], alerting["area"]) == (-23.55, -46.63, "Centro")
    assert alerting["kind"] == "residential" and alerting["pressure_mca"] == 12.0
    assert sensors["S-02"]["alerts_24h"] == 0 and sensors["S-02"]["last_alert_at"] is None
    only = (await gateway.client.get("/sensors", params={"alert_only": True})).json()
    assert [s["key"] for s in only] == ["S-01"]
    by_place = (await gateway.client.get("/sensors", params={"neighbourhood": "Vila Nova"})).json()
    assert [s["key"] for s in by_place] == ["S-02"]
    # The same, for any entity stream; a stream without entities is refused.
    generic = (await gateway.client.get("/v1/streams/pressure/entities", params={"area": "Centro"})).json()
    assert [s["key"] for s in generic] == ["S-01"]
    assert (await gateway.client.get("/v1/streams/people/entities")).status_code == 422


async def test_control_characters_in_a_filter_are_a_422_naming_it(gateway: Gateway) -> None:
    # PostgreSQL text cannot hold NUL; the schema fuzz once turned this into a 500.
    for path, params in (("/predictions", {"task": "ca\x00rbon"}), ("/alerts", {"stream": "press\x01ure"}),
                         ("/sensors", {"neighbourhood": "Centro\x00"}), ("/models", {"task": "x\x00"})):
        response = await gateway.client.get(path, params=params)
        assert response.status_code == 422, (path, response.text)
        assert next(iter(params)) in response.text
