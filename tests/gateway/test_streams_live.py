"""Streams declared while Fluxo runs: registered through the API, their
events normalized, trained on schedule and on command, scored; evolved
compatibly (picked up live) or refused; archived. The worker services run as
processes started before the registration and are never restarted."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import yaml

from tests.gateway.conftest import Gateway
from tests.gateway.streams_live import finished_run, scored_rows, started, still_running, workers
from tests.helpers import wait_for
from tests.live import read_all

DISTRICT_PRICE = {"north": 50_000.0, "south": 0.0, "centre": 120_000.0, "east": 20_000.0}

HOUSES: dict[str, Any] = {
    "name": "houses",
    "description": "Houses for sale: a stream no code knows.",
    "key": "house_id",
    "fields": [
        {"name": "house_id", "type": "str"},
        {"name": "area_m2", "type": "float", "minimum": 10, "maximum": 1000, "unit": "m2"},
        {"name": "rooms", "type": "int", "minimum": 1, "maximum": 20},
        {"name": "district", "type": "category", "categories": list(DISTRICT_PRICE)},
        {"name": "listed_at", "type": "datetime"},
        {"name": "price", "type": "float", "minimum": 0, "required": False, "unit": "EUR"},
    ],
    "derived": [{"name": "price_per_m2", "expression": "price / area_m2"}],
    "time_parts": [{"field": "listed_at", "parts": ["month", "weekend"]}],
    "context": ["house_id", "listed_at"],
    "tasks": [{"name": "price", "kind": "regression", "target": "price",
               "features": ["area_m2", "rooms", "district", "listed_at_weekend"]}],
}


def houses(n: int, seed: int, *, labelled: bool = True) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        area = float(rng.uniform(30, 300))
        rooms = int(rng.integers(1, 8))
        district = str(rng.choice(list(DISTRICT_PRICE)))
        record = {"house_id": f"h{seed}-{i}", "area_m2": round(area, 1), "rooms": rooms, "district": district,
                  "listed_at": f"2026-0{1 + i % 9}-{1 + i % 27:02d}T10:00:00Z"}
        if labelled:
            price = 2000 * area + 15_000 * rooms + DISTRICT_PRICE[district] + rng.normal(0, 5000)
            record["price"] = round(price, 2)
        records.append(record)
    return records


async def send(gateway: Gateway, stream: str, records: list[dict[str, Any]]) -> list[str]:
    ids = [uuid.uuid4().hex for _ in records]
    response = await gateway.client.post(f"/v1/streams/{stream}/events", json={"records": records, "event_ids": ids})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(records) and response.json()["event_ids"] == ids
    return ids


async def test_a_stream_registered_while_fluxo_runs_is_normalized_trained_scored_and_evolved(
    gateway: Gateway, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    extra = {"trainer": {"TRAIN_INTERVAL": "2", "TRAIN_MIN_ROWS": "150"}, "consumer": {"MODEL_REFRESH_SECONDS": "2"}}
    with workers(gateway, logs, **extra) as processes:
        await started(logs, processes)
        # Registered after every service started.
        created = await gateway.client.post("/v1/streams", content=yaml.safe_dump(HOUSES),
                                            headers={"Content-Type": "application/yaml"})
        assert created.status_code == 201, created.text
        assert created.json()["version"] == 1
        again = await gateway.client.post("/v1/streams", json=HOUSES)
        assert again.status_code == 200 and again.json()["version"] == 1

        first = await send(gateway, "houses", houses(400, seed=1))
        pool = gateway.state.pool

        async def scheduled_model() -> Any:
            return await pool.fetchrow(
                """SELECT m.id, m.version, r.trigger FROM models m JOIN training_runs r ON r.model_id = m.id
                   WHERE m.stream = 'houses' AND m.active""")

        model = await wait_for(scheduled_model, 180, interval=0.5, message="no model trained on schedule")
        assert model["trigger"] == "schedule"

        run = await finished_run(gateway, {"stream": "houses", "task": "price", "algorithm": "xgboost",
                                           "hyperparameters": {"n_estimators": 60}, "force": True}, logs)
        assert run["status"] == "done" and run["decision"] == "forced", run
        assert run["metrics"]["r2"] > 0.8, run["metrics"]
        commanded = await pool.fetchval("SELECT version FROM models WHERE id = $1", run["model_id"])

        # Every later event is scored, by the model trained on command, labels or not.
        later = await send(gateway, "houses", houses(60, seed=2, labelled=False))

        async def scored_by_commanded() -> list[dict[str, Any]] | None:
            rows = await scored_rows(gateway, later, "price")
            return rows if rows and {r["model_version"] for r in rows} == {commanded} else None

        rows = await wait_for(scored_by_commanded, 120, interval=0.5, message="later events not scored")
        assert all(r["prediction"] > 0 and r["actual"] is None for r in rows)
        labelled_rows = await pool.fetchval(
            "SELECT count(*) FROM predictions WHERE event_id = ANY($1::text[]) AND actual IS NOT NULL", first)
        assert labelled_rows > 0  # events with their label carry prediction against actual

        # A compatible change: a new version, picked up live by the normalizer.
        v2 = {**HOUSES, "fields": [*HOUSES["fields"], {"name": "garden_m2", "type": "float", "minimum": 0,
                                                        "required": False}],
              "derived": [*HOUSES["derived"], {"name": "garden_share", "expression": "garden_m2 / area_m2"}]}
        evolved = await gateway.client.post("/v1/streams", json=v2)
        assert evolved.status_code == 201 and evolved.json()["version"] == 2, evolved.text

        garden_events: set[str] = set()

        async def garden_share_of_new_events() -> float | None:
            # An event with the new field every attempt, until the normalizer
            # computes the new derived field for one of them.
            [record] = houses(1, seed=3)
            garden_events.update(await send(gateway, "houses", [{**record, "area_m2": 100.0, "garden_m2": 25.0}]))
            for message in await read_all(gateway.settings.kafka_bootstrap_servers,
                                          gateway.state.topics.features("houses")):
                event = orjson.loads(message.value)
                if event["event_id"] in garden_events and "garden_share" in event["features"]:
                    return event["features"]["garden_share"]
            return None

        share = await wait_for(garden_share_of_new_events, 60, interval=1.0, message="version 2 not picked up")
        assert share == 0.25

        # An incompatible change is refused with the field named, and changes nothing.
        removed = {**HOUSES, "fields": [f for f in HOUSES["fields"] if f["name"] != "district"],
                   "tasks": [{**HOUSES["tasks"][0], "features": ["area_m2", "rooms"]}]}
        refused = await gateway.client.post("/v1/streams", json=removed)
        assert refused.status_code == 409, refused.text
        assert any("'district' cannot be removed" in e["reason"] for e in refused.json()["errors"])
        current = (await gateway.client.get("/v1/streams/houses")).json()
        assert current["version"] == 2 and [v["version"] for v in current["versions"]] == [1, 2]
        assert "garden_m2" in current["fields"] and "district" in current["fields"]

        # Archived: no more events; its data and models stay.
        archived = await gateway.client.delete("/v1/streams/houses")
        assert archived.status_code == 200 and archived.json()["status"] == "archived"
        response = await gateway.client.post("/v1/streams/houses/events", json={"record": houses(1, seed=4)[0]})
        assert response.status_code == 422 and "archived" in response.text
        assert (await gateway.client.get("/models", params={"stream": "houses"})).json()
        still_running(processes, logs)


async def test_consumption_derives_kwh_co2e_and_cost_and_reports_the_error_in_kwh_and_percent(
    gateway: Gateway, tmp_path: Path
) -> None:
    from tests.generator.streams import consumption

    spec = gateway.state.catalog.get("consumption")
    logs = tmp_path / "logs"
    with workers(gateway, logs, trainer={"TRAIN_INTERVAL": "0"}, consumer={"MODEL_REFRESH_SECONDS": "2"}) as processes:
        await started(logs, processes)
        source = consumption(3)
        training = source.next_batch(600)
        sent = await send(gateway, "consumption", [_json(r) for r in training])
        by_id = dict(zip(sent, training, strict=True))

        async def features() -> dict[str, dict[str, Any]] | None:
            events = {orjson.loads(m.value)["event_id"]: orjson.loads(m.value) for m in await read_all(
                gateway.settings.kafka_bootstrap_servers, gateway.state.topics.features("consumption"))}
            return events if set(sent) <= set(events) else None

        events = await wait_for(features, 120, interval=1.0, message="consumption events not normalized")
        vat, factor = spec.constants["vat"], spec.constants["emission_factor"]
        for event_id in sent[:50]:
            record, numbers = by_id[event_id], events[event_id]["features"]
            assert numbers["kwh"] == approx(record["power_w"] * record["usage_hours"] / 1000)
            assert numbers["co2e_kg"] == approx(record["consumed_kwh"] * factor)
            tariff = spec.tables["tariff"][record["tariff_flag"]]
            assert numbers["cost"] == approx(record["consumed_kwh"] * tariff * (1 + vat))

        run = await finished_run(gateway, {"stream": "consumption", "task": "consumption"}, logs)
        assert run["status"] == "done" and run["metrics"]["r2"] > 0.8, run
        checked = source.next_batch(80)
        ids = await send(gateway, "consumption", [_json(r) for r in checked])
        rows = await wait_for(lambda: scored_rows(gateway, ids, "consumption"), 120, interval=0.5,
                              message="consumption events not scored")
        actual_of = dict(zip(ids, (r["consumed_kwh"] for r in checked), strict=True))
        for row in rows:
            actual = actual_of[row["event_id"]]
            assert row["actual"] == approx(actual)
            assert row["error"] == approx(row["prediction"] - actual)  # in kWh
            assert row["percent_error"] == approx(100 * (row["prediction"] - actual) / actual)
        summary = await gateway.state.pool.fetchrow(
            "SELECT with_actual, mean_abs_error, mean_abs_percent_error FROM model_errors WHERE stream = 'consumption'")
        assert summary["with_actual"] == len(checked)
        assert summary["mean_abs_error"] == approx(np.mean([abs(r["error"]) for r in rows]))
        assert 0 < summary["mean_abs_percent_error"] < 50
        still_running(processes, logs)


def approx(value: float):  # noqa: ANN201
    import pytest

    return pytest.approx(value, rel=1e-6, abs=1e-9)


def _json(record: dict[str, Any]) -> dict[str, Any]:
    """A simulated record as a device would send it (timestamps as ISO 8601)."""
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in record.items()}
