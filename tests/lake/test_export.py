"""The pressure run exported to the real S3 server and to a local directory,
each export SIGKILLed mid-write and finished by a restarted exporter: every
source row is in exactly one Parquet row, what pyarrow reads back is what
PostgreSQL and Kafka hold, and nothing half-written is left behind. An
unreachable bucket fails an export with the reason and a metric, and the
next scheduled export covers what it missed."""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any

import orjson
import pyarrow.compute as pc
import pytest
from prometheus_client import REGISTRY

from services.exporter.service import run as run_exporter
from services.exporter.settings import ExporterSettings
from shared.db import create_pool
from shared.infra.s3 import S3Endpoint
from shared.lake import manifest
from shared.lake.destination import ObjectStoreSettings, open_destination
from shared.months import hour_of
from tests.helpers import wait_for
from tests.lake.conftest import PressureRun, remove_bucket
from tests.lake.exports import LakeExport, read_kind, temporaries
from tests.live import fresh_bucket_name, running
from tests.streams import PRESSURE

WHERE = ["s3", "local"]
PREDICTION_COLUMNS = ("event_id", "task", "key", "status", "model_id", "model_version", "prediction", "label",
                      "score", "actual", "actual_label", "error")
ALERT_COLUMNS = ("event_id", "task", "key", "area", "latitude", "longitude", "value", "score", "model_version",
                 "reading_at", "created_at")
VALUE = PRESSURE.entity.history.value


async def _rows(run: PressureRun, query: str) -> list[dict[str, Any]]:
    pool = await create_pool(run.dsn)
    try:
        return [dict(row) for row in await pool.fetch(query)]
    finally:
        await pool.close()


def _by(rows: list[dict[str, Any]], key: str, columns: tuple[str, ...]) -> dict[Any, tuple]:
    return {row[key]: tuple(row[c] for c in columns) for row in rows}


@pytest.mark.parametrize("where", WHERE)
async def test_every_scored_event_is_in_exactly_one_row(lake_exports: dict[str, LakeExport],
                                                        pressure_run: PressureRun, where: str) -> None:
    lake = lake_exports[where]
    table = read_kind(lake.destination, "predictions")
    counts = Counter(table["event_id"].to_pylist())
    stored = await _rows(pressure_run, "SELECT * FROM predictions WHERE stream = 'pressure'")
    assert len(stored) == len(pressure_run.raw)
    assert set(counts) == {row["event_id"] for row in stored} == {event["event_id"] for event in pressure_run.raw}
    assert set(counts.values()) == {1}, "an event is in more than one row"
    # Read back, the rows hold what PostgreSQL holds.
    assert _by(table.to_pylist(), "event_id", PREDICTION_COLUMNS) == _by(stored, "event_id", PREDICTION_COLUMNS)
    assert set(table["stream"].to_pylist()) == {PRESSURE.name}
    assert {d.isoformat() for d in pc.unique(pc.cast(table["scored_at"], "date32")).to_pylist()} == set(
        table["date"].to_pylist())


@pytest.mark.parametrize("where", WHERE)
async def test_alerts_and_history_read_back_as_postgresql_has_them(lake_exports: dict[str, LakeExport],
                                                                   pressure_run: PressureRun, where: str) -> None:
    lake = lake_exports[where]
    alerts = read_kind(lake.destination, "alerts")
    stored = await _rows(pressure_run, "SELECT * FROM alerts WHERE stream = 'pressure'")
    assert stored and sorted(alerts["event_id"].to_pylist()) == sorted(row["event_id"] for row in stored)
    assert _by(alerts.to_pylist(), "event_id", ALERT_COLUMNS) == _by(stored, "event_id", ALERT_COLUMNS)

    history = read_kind(lake.destination, "history").to_pylist()
    hours = await _rows(pressure_run, """SELECT key, hour, value_sum / value_count AS mean, deviation, anomalies,
                                                readings, kind, area FROM entity_history WHERE stream = 'pressure'""")
    finished = (await _rows(pressure_run, f"SELECT finished_at FROM exports WHERE id = '{lake.export_id}'"))[0]
    # Closed hours only: a later hour had begun, by the readings or by the clock.
    bound = max(max(row["hour"] for row in hours), hour_of(finished["finished_at"]))
    expected = {(row["key"], row["hour"]): row for row in hours if row["hour"] < bound}
    assert len({(row["key"], row["hour"]) for row in history}) == len(history) == len(expected) > 0
    for row in history:
        stored_hour = expected[(row["key"], row["hour"])]
        assert row["mean"] == pytest.approx(stored_hour["mean"], rel=1e-12)
        assert (row["deviation"], row["anomalies"], row["readings"], row["kind"], row["area"], row["alert"]) == (
            stored_hour["deviation"], stored_hour["anomalies"], stored_hour["readings"], stored_hour["kind"],
            stored_hour["area"], stored_hour["anomalies"] > 0)


@pytest.mark.parametrize("where", WHERE)
async def test_features_hold_every_offset_once(lake_exports: dict[str, LakeExport], pressure_run: PressureRun,
                                               where: str) -> None:
    table = read_kind(lake_exports[where].destination, "features")
    offsets = list(zip(table["topic_partition"].to_pylist(), table["topic_offset"].to_pylist(), strict=True))
    messages = {(record.partition, record.offset): orjson.loads(record.value) for record in pressure_run.features}
    assert len(offsets) == len(set(offsets)) and set(offsets) == set(messages)
    for row in table.to_pylist():
        event = messages[(row["topic_partition"], row["topic_offset"])]
        assert row["event_id"] == event["event_id"] and row["key"] == event["key"]
        assert row["features"][VALUE] == event["features"][VALUE]
        assert row["context"][PRESSURE.key] == event["context"][PRESSURE.key]


@pytest.mark.parametrize("where", WHERE)
async def test_a_killed_export_leaves_nothing_half_written(lake_exports: dict[str, LakeExport],
                                                           pressure_run: PressureRun, where: str) -> None:
    lake = lake_exports[where]
    assert lake.files_at_kill >= 1 and lake.pending_at_kill >= 1, "the kill did not land mid-export"
    assert temporaries(lake.destination) == [], "a temporary file was left (the planted one included)"
    files = await _rows(pressure_run, f"SELECT path FROM export_files WHERE destination = '{lake.destination.name}'")
    present = {info.path.removeprefix(lake.destination.root + "/") for info in lake.destination.files("")}
    assert present == {row["path"] for row in files}
    pending = await _rows(pressure_run, f"""SELECT id FROM export_segments
                                            WHERE destination = '{lake.destination.name}' AND status = 'pending'""")
    assert pending == []
    status = await _rows(pressure_run, f"SELECT status, files, rows FROM exports WHERE id = '{lake.export_id}'")
    assert status[0]["status"] == manifest.DONE and status[0]["files"] > 0


def _failures(reason: str) -> float:
    return REGISTRY.get_sample_value("fluxo_export_failures_total", {"reason": reason}) or 0.0


async def test_an_unreachable_bucket_fails_the_export_and_the_next_one_covers_it(
    pressure_run: PressureRun, s3_server: S3Endpoint
) -> None:
    bucket = fresh_bucket_name("unreachable")  # not there yet
    store = ObjectStoreSettings(s3_endpoint_url=s3_server.url, aws_access_key_id=s3_server.access_key,
                                aws_secret_access_key=s3_server.secret_key, aws_region=s3_server.region,
                                s3_max_attempts=1)
    settings = ExporterSettings(
        kafka_bootstrap_servers=pressure_run.kafka, database_url=pressure_run.dsn,
        topic_prefix=pressure_run.topics.prefix, export_destination=f"s3://{bucket}/lake", export_interval=2.0,
        export_poll_seconds=0.2, log_json=False, **{k: v for k, v in store.model_dump().items()},
    )
    before = _failures("destination")
    pool = await create_pool(pressure_run.dsn)
    server = s3_server.filesystem(allow_bucket_creation=True, allow_bucket_deletion=True)
    try:
        async with running(partial(run_exporter, settings)):

            async def scheduled(status: str) -> list[dict[str, Any]]:
                rows = await pool.fetch(
                    """SELECT id, status, error, finished_at FROM exports
                       WHERE trigger = 'schedule' AND destination = $1 AND status = $2 ORDER BY requested_at""",
                    f"s3://{bucket}/lake", status)
                return [dict(row) for row in rows]

            failed = (await wait_for(lambda: scheduled(manifest.FAILED), 60, interval=0.2,
                                     message="the first scheduled export failed"))[0]
            assert failed["error"].startswith("destination: ") and len(failed["error"]) > len("destination: ")
            assert _failures("destination") > before
            server.create_dir(bucket)
            done = (await wait_for(lambda: scheduled(manifest.DONE), 60, interval=0.2,
                                   message="a later scheduled export succeeded"))[0]
            assert done["finished_at"] > failed["finished_at"]
        lake = open_destination(f"s3://{bucket}/lake", store)
        exported = Counter(read_kind(lake, "predictions")["event_id"].to_pylist())
        assert set(exported.values()) == {1} and len(exported) == len(pressure_run.raw)
    finally:
        await pool.close()
        if server.get_file_info(bucket).type.name != "NotFound":
            remove_bucket(server, bucket)
