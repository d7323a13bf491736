"""The hourly history through the gateway: paged JSON and CSV with filters,
422s naming the parameter, and the original API's /dados_geral and
/dados_dia field for field."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from services.consumer.history import history_rows
from services.consumer.store import write_batch
from shared.months import day_of
from tests.gateway.conftest import Gateway
from tests.history_data import alerting, batch_of, readings

# The original API's answer, key for key and type for type (its README's example).
ORIGINAL = {
    "xid": str, "hora": str, "data": str, "media_hora": float, "desvio_padrao_30_dias": float, "alerta": str,
    "tipo": str, "latitude": float, "longitude": float, "bairro": str,
}
SENSORS = ("s-1", "s-2", "s-3")
FAR = datetime(2000, 1, 1, tzinfo=UTC)


async def _write(gateway: Gateway, times: list[datetime], alerted: set[int] = frozenset()) -> list:
    """Three readings per time (one per sensor); returns the readings."""
    moments = [t for t in times for _ in SENSORS]
    keys = [s for _ in times for s in SENSORS]
    values = [20.0 + i for i in range(len(moments))]
    events = readings(moments, values, keys, [0.5 + i / 100 for i in range(len(moments))])
    batch = batch_of(events)
    scores = alerting(list(range(len(events))), [i in alerted for i in range(len(events))])
    await write_batch(gateway.state.pool, [], history=history_rows(batch, scores, FAR))
    return list(zip(moments, keys, values, strict=True))


@pytest.fixture
async def today(gateway: Gateway) -> datetime:
    """Readings today at 00:10, 00:40 and 02:20, two days ago, thirteen months
    ago and tomorrow (UTC); the first reading of today alerted."""
    start = day_of(datetime.now(UTC))
    times = [start + timedelta(minutes=10), start + timedelta(minutes=40), start + timedelta(hours=2, minutes=20),
             start - timedelta(days=2), start - timedelta(days=400), start + timedelta(days=1, hours=1)]
    await _write(gateway, times, alerted={0})
    return start


async def test_dados_geral_and_dados_dia_answer_like_the_original(gateway: Gateway, today: datetime) -> None:
    general = await gateway.client.get("/dados_geral")
    assert general.status_code == 200, general.text
    rows = general.json()
    # Today's hours 00 and 02 and the hour two days ago, per sensor; not a year
    # ago and not tomorrow.
    assert len(rows) == 3 * len(SENSORS)
    for row in rows:
        assert list(row) == list(ORIGINAL)
        assert {key: type(value) for key, value in row.items()} == ORIGINAL, row
        assert row["alerta"] in ("Normal", "Anormal")
        assert len(row["hora"]) == 2 and row["hora"].isdigit()
    by_hour = {(row["data"], row["hora"], row["xid"]): row for row in rows}
    day = f"{today:%Y-%m-%d}"
    # Sensor s-1's hour 00: readings 20.0 (00:10, alerted) and 23.0 (00:40).
    first = by_hour[(day, "00", "s-1")]
    assert first["media_hora"] == pytest.approx(21.5)
    assert first["desvio_padrao_30_dias"] == pytest.approx(0.53)  # the hour's latest reading's
    assert first["alerta"] == "Anormal"
    assert by_hour[(day, "00", "s-2")]["alerta"] == "Normal"
    assert by_hour[(day, "02", "s-3")]["media_hora"] == pytest.approx(28.0)
    assert (f"{today - timedelta(days=2):%Y-%m-%d}", "00", "s-1") in by_hour

    latest = await gateway.client.get("/dados_dia")
    assert latest.status_code == 200, latest.text
    assert [(row["data"], row["hora"], row["xid"]) for row in latest.json()] == [
        (day, "02", sensor) for sensor in SENSORS]
    assert all(list(row) == list(ORIGINAL) for row in latest.json())


async def test_dados_geral_streams_past_one_chunk(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.gateway.routes import history

    monkeypatch.setattr(history, "STREAM_CHUNK", 4)
    start = day_of(datetime.now(UTC))
    await _write(gateway, [start - timedelta(hours=h) for h in range(1, 4)])  # 9 rows: chunks of 4, 4, 1
    rows = (await gateway.client.get("/dados_geral")).json()
    assert len(rows) == 9
    assert len({(row["data"], row["hora"], row["xid"]) for row in rows}) == 9


async def test_no_history_answers_empty_arrays(gateway: Gateway) -> None:
    assert (await gateway.client.get("/dados_geral")).json() == []
    assert (await gateway.client.get("/dados_dia")).json() == []


async def test_history_pages_in_hour_then_key_order(gateway: Gateway, today: datetime) -> None:
    items, after, pages = [], None, 0
    while True:
        params = {"limit": 4, **({"after": after} if after else {})}
        answer = (await gateway.client.get("/v1/sensors/history", params=params)).json()
        assert len(answer["items"]) <= 4
        items += answer["items"]
        pages += 1
        after = answer["next"]
        if after is None:
            break
    # Five hours (today's 00 and 02, two days and 400 days ago, tomorrow's 01) per sensor.
    assert len(items) == 5 * len(SENSORS) and pages == 4
    order = [(item["hour"], item["key"]) for item in items]
    assert order == sorted(order) and len(set(order)) == len(order)
    assert set(items[0]) == {"key", "hour", "mean", "deviation", "alert", "anomalies", "readings", "kind", "area",
                             "latitude", "longitude"}

    generic = (await gateway.client.get("/v1/streams/pressure/history", params={"key": "s-1"})).json()["items"]
    assert [item["key"] for item in generic] == ["s-1"] * 5
    zero = next(item for item in generic if item["hour"] == today.isoformat())
    assert (zero["readings"], zero["anomalies"], zero["alert"], zero["mean"]) == (2, 1, True, pytest.approx(21.5))

    window = {"since": today.isoformat(), "until": (today + timedelta(hours=3)).isoformat()}
    today_only = (await gateway.client.get("/v1/sensors/history", params={**window, "sensor": "s-2"})).json()
    assert [item["hour"] for item in today_only["items"]] == [today.isoformat(),
                                                               (today + timedelta(hours=2)).isoformat()]
    area = zero["area"]
    by_area = (await gateway.client.get("/v1/sensors/history", params={"neighbourhood": area})).json()["items"]
    assert by_area and all(item["area"] == area for item in by_area)


async def test_history_as_csv(gateway: Gateway, today: datetime) -> None:
    answer = await gateway.client.get("/v1/sensors/history", params={"format": "csv", "limit": 5})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 5 and rows[0]["key"] in SENSORS
    following = answer.headers["X-Next-Page"]
    rest = await gateway.client.get("/v1/sensors/history", params={"format": "csv", "after": following})
    assert len(list(csv.DictReader(io.StringIO(rest.text)))) == 5 * len(SENSORS) - 5
    assert "X-Next-Page" not in rest.headers


BAD_INPUT = [
    ("/v1/sensors/history", {"sensor": "nobody"}, "sensor"),
    ("/v1/streams/pressure/history", {"key": "nobody"}, "key"),
    ("/v1/sensors/history", {"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "until"),
    ("/v1/sensors/history", {"since": "2026-11-01T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "until"),
    ("/v1/sensors/history", {"since": "last tuesday"}, "since"),
    ("/v1/sensors/history", {"until": "2026-13-01"}, "until"),
    ("/v1/sensors/history", {"after": "not-a-token"}, "after"),
    ("/v1/sensors/history", {"format": "xml"}, "format"),
    ("/v1/sensors/history", {"limit": 0}, "limit"),
    ("/v1/streams/energy/history", {}, "stream"),
    ("/v1/streams/nowhere/history", {}, "stream"),
]


async def test_bad_input_is_a_422_naming_the_parameter(gateway: Gateway, today: datetime) -> None:
    for path, params, field in BAD_INPUT:
        answer = await gateway.client.get(path, params=params)
        assert answer.status_code == 422, (path, params, answer.text)
        assert [error["field"] for error in answer.json()["errors"]] == [field], (path, params)
