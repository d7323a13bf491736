"""After a pressure run over several simulated hours: the hourly history is
the raw readings' arithmetic, the original API's two routes answer with its
keys and types, and the consumer's retention drops an expired partition."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from functools import partial

import httpx
import pytest

from services.consumer.history import history_rows
from services.consumer.service import run as run_consumer
from services.consumer.settings import ConsumerSettings
from services.consumer.store import write_batch
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.db import create_pool
from shared.months import hour_of, months_before
from tests.helpers import wait_for
from tests.history_data import WHEN, batch_of, readings
from tests.lake.conftest import SENSORS, PressureRun
from tests.live import running
from tests.streams import PRESSURE

ORIGINAL = {
    "xid": str, "hora": str, "data": str, "media_hora": float, "desvio_padrao_30_dias": float, "alerta": str,
    "tipo": str, "latitude": float, "longitude": float, "bairro": str,
}
VALUE = PRESSURE.entity.history.value


def raw_hours(run: PressureRun) -> dict[tuple[str, datetime], list[dict]]:
    hours: dict[tuple[str, datetime], list[dict]] = defaultdict(list)
    for event in run.raw:
        data = event["data"]
        hours[(data[PRESSURE.key], hour_of(datetime.fromisoformat(data[WHEN])))].append(data)
    return hours


async def test_each_hour_is_its_raw_readings_arithmetic(pressure_run: PressureRun) -> None:
    pool = await create_pool(pressure_run.dsn)
    try:
        history = {(row["key"], row["hour"]): row for row in await pool.fetch(
            "SELECT key, hour, readings, value_sum / value_count AS mean, anomalies FROM entity_history")}
        alerts = await pool.fetch("SELECT key, reading_at FROM alerts")
    finally:
        await pool.close()
    expected = raw_hours(pressure_run)
    assert len({hour for _, hour in expected}) >= 8, "the run should span several simulated hours"
    assert set(history) == set(expected)
    for slot, members in expected.items():
        values = [data[VALUE] for data in members]
        assert history[slot]["readings"] == len(values)
        assert history[slot]["mean"] == pytest.approx(sum(values) / len(values), rel=1e-12)
    alerts_per_hour: dict[tuple[str, datetime], int] = defaultdict(int)
    for alert in alerts:
        alerts_per_hour[(alert["key"], hour_of(alert["reading_at"]))] += 1
    assert alerts, "the run raised no alert"
    assert {slot: row["anomalies"] for slot, row in history.items() if row["anomalies"]} == dict(alerts_per_hour)


async def test_the_original_routes_answer_for_the_run(pressure_run: PressureRun) -> None:
    settings = GatewaySettings(kafka_bootstrap_servers=pressure_run.kafka, database_url=pressure_run.dsn,
                               topic_prefix=pressure_run.topics.prefix, artifact_dir=pressure_run.artifact_dir,
                               log_json=False)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
            general = (await client.get("/dados_geral")).json()
            today = (await client.get("/dados_dia")).json()
    expected = raw_hours(pressure_run)
    assert len(general) == len(expected)
    for row in general:
        assert list(row) == list(ORIGINAL) and {k: type(v) for k, v in row.items()} == ORIGINAL, row
        hour = datetime.fromisoformat(f"{row['data']}T{row['hora']}:00:00+00:00")
        values = [data[VALUE] for data in expected[(row["xid"], hour)]]
        assert row["media_hora"] == pytest.approx(sum(values) / len(values))
        assert row["alerta"] in ("Normal", "Anormal")
    latest = max(hour for _, hour in expected)
    assert sorted(row["xid"] for row in today) == sorted({key for key, hour in expected if hour == latest})
    assert len(today) == SENSORS
    assert {(row["data"], row["hora"]) for row in today} == {(f"{latest:%Y-%m-%d}", f"{latest:%H}")}


async def test_the_consumer_drops_partitions_past_retention(pressure_run: PressureRun) -> None:
    pool = await create_pool(pressure_run.dsn)
    old = months_before(datetime.now(UTC), 3)
    old_partition = f"entity_history_p{old:%Y%m}"
    try:
        far = datetime(2000, 1, 1, tzinfo=UTC)
        events = readings([old, old + timedelta(minutes=5)], [30.0, 31.0], ["old-sensor"] * 2)
        await write_batch(pool, [], history=history_rows(batch_of(events), None, far))

        async def partitions() -> set[str]:
            return {row["relname"] for row in await pool.fetch(
                "SELECT relname FROM pg_class WHERE relname LIKE 'entity_history_p%' AND relkind = 'r'")}

        assert old_partition in await partitions()
        settings = ConsumerSettings(kafka_bootstrap_servers=pressure_run.kafka, database_url=pressure_run.dsn,
                                    topic_prefix=pressure_run.topics.prefix, artifact_dir=pressure_run.artifact_dir,
                                    consumer_streams=(PRESSURE.name,), history_retention_months=2, log_json=False)
        async with running(partial(run_consumer, settings)):
            remaining = await wait_for(
                lambda: _without(partitions(), old_partition), 60, interval=0.5,
                message=f"the consumer dropped {old_partition} (retention: 2 months)")
        assert f"entity_history_p{datetime.now(UTC):%Y%m}" in remaining
        assert await pool.fetchval("SELECT count(*) FROM entity_history WHERE key = 'old-sensor'") == 0
        assert await pool.fetchval("SELECT count(*) FROM entity_history") > 0
    finally:
        await pool.close()


async def _without(found, name: str) -> set[str] | None:
    partitions = await found
    return partitions if name not in partitions else None
