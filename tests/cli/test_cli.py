"""Every ``fluxo`` subcommand, run as a process against a running gateway."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import orjson

from shared.ml import registry
from tests.cli.conftest import API_KEY, cli_env, finish, start_cli
from tests.gateway.files import csv_bytes, energy_table, xlsx_bytes
from tests.gateway.server import RunningGateway
from tests.helpers import wait_for

PREDICT_ARGS = ["renewables_share_energy=0.053", "fossil_share_energy=99.947", "carbon_intensity_elec=508.162"]


async def test_predict_and_regress(fluxo, cli_gateway: RunningGateway) -> None:
    direct = httpx.post(f"{cli_gateway.url}/predict", json={"renewables_share_energy": "0.053",
                        "fossil_share_energy": "99.947", "carbon_intensity_elec": "508.162"}).json()
    result = await fluxo("predict", *PREDICT_ARGS, "--json")
    assert result.code == 0, result.stderr
    assert result.json() == direct
    human = await fluxo("predict", *PREDICT_ARGS)
    assert human.code == 0
    assert f"category {direct['category']}" in human.stdout and "centre: renewables_share_energy=" in human.stdout

    regress = await fluxo("regress", "renewables_share_energy=0.480", "--json")
    assert regress.code == 0, regress.stderr
    expected = httpx.post(f"{cli_gateway.url}/regress", json={"renewables_share_energy": "0.480"}).json()
    assert regress.json() == expected
    human = await fluxo("regress", "renewables_share_energy=0.480")
    assert human.stdout.startswith(f"energy/carbon: {expected['prediction']:.6g}")
    # Any stream and task: the same answer through /v1/streams/{stream}/predict.
    general = await fluxo("predict", "--stream", "energy", "--task", "carbon", "renewables_share_energy=0.480", "--json")
    assert general.code == 0, general.stderr
    assert general.json()["predictions"][0]["prediction"] == expected["prediction"]


async def test_errors_are_clear(fluxo, cli_gateway: RunningGateway) -> None:
    bad = await fluxo("predict", "renewables_share_energy=150", "fossil_share_energy=1", "carbon_intensity_elec=2")
    assert bad.code == 1
    assert "error 422: renewables_share_energy: above maximum 100" in bad.stderr
    assert "Traceback" not in bad.stderr

    refused = await fluxo("models", env=cli_env(None, FLUXO_URL="http://127.0.0.1:9"))
    assert refused.code == 2
    assert "cannot reach the gateway at http://127.0.0.1:9" in refused.stderr and "FLUXO_URL" in refused.stderr

    usage = await fluxo("predict", "renewables_share_energy")
    assert usage.code == 2 and "expected NAME=VALUE" in usage.stderr


async def test_upload_reports_rows_and_needs_the_key(fluxo, cli_gateway: RunningGateway, tmp_path: Path) -> None:
    rows = energy_table(30)
    rows[5][3] = "150"
    path = tmp_path / "energy.csv"
    path.write_bytes(csv_bytes(rows))
    result = await fluxo("upload", str(path), "--stream", "energy")
    assert result.code == 0, result.stderr
    assert "29 rows accepted, 1 rejected (of 30)" in result.stdout
    assert "above maximum 100" in result.stdout

    sheet = tmp_path / "energy.xlsx"
    sheet.write_bytes(xlsx_bytes(energy_table(12)))
    result = await fluxo("upload", str(sheet), "--stream", "energy", "--json")
    assert result.code == 0, result.stderr
    assert (result.json()["file_type"], result.json()["rows_accepted"]) == ("xlsx", 12)

    no_key = await fluxo("upload", str(path), "--stream", "energy", env=cli_env(cli_gateway, FLUXO_API_KEY=""))
    assert no_key.code == 1 and "error 401" in no_key.stderr and "X-API-Key" in no_key.stderr
    with_option = await fluxo("--api-key", API_KEY, "upload", str(path), "--stream", "energy",
                              env=cli_env(cli_gateway, FLUXO_API_KEY=""))
    assert with_option.code == 0, with_option.stderr

    missing = await fluxo("upload", str(tmp_path / "nope.csv"), "--stream", "energy")
    assert missing.code == 2 and "no such file" in missing.stderr
    wrong = tmp_path / "people.csv"
    wrong.write_bytes(b"person_id,age\nP1,30\n")
    refused = await fluxo("upload", str(wrong), "--stream", "people")
    assert refused.code == 1 and "error 422" in refused.stderr and "columns: missing columns" in refused.stderr


async def test_big_upload_shows_progress(fluxo, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(csv_bytes(energy_table(30_000)))
    assert path.stat().st_size > 1024 * 1024
    result = await fluxo("upload", str(path), "--stream", "energy")
    assert result.code == 0, result.stderr
    # The bar's final state: the whole file went out.
    assert "uploading big.csv" in result.stderr
    size_mb = f"{path.stat().st_size / 1e6:.1f}"
    assert f"{size_mb}/{size_mb} MB" in result.stderr
    assert "30000 rows accepted" in result.stdout


async def test_train_waits_for_the_run_and_prints_metrics(cli_gateway: RunningGateway, cli_db: asyncpg.Pool) -> None:
    process = await start_cli("train", "--stream", "energy", "--task", "carbon", "--param", "n_estimators=50",
                              "--poll", "0.2", env=cli_env(cli_gateway))

    async def queued() -> str | None:
        return await cli_db.fetchval(
            "SELECT run_id FROM training_runs WHERE request->'hyperparameters'->>'n_estimators' = '50'")

    run_id = await wait_for(queued, 60, message="the CLI's run was not queued")
    # Play the trainer's part on the real registry.
    await registry.start_run(cli_db, run_id)
    await registry.finish_run(cli_db, run_id, model_id=None, metrics={"r2": 0.91, "mae": 12.5},
                              decision="kept the active model", candidate_score=0.91, active_score=0.95)
    result = await finish(process)
    assert result.code == 0, result.stderr
    assert f"run {run_id} (energy/carbon" in result.stdout and ": done" in result.stdout
    assert "metrics: mae=12.5, r2=0.91" in result.stdout

    process = await start_cli("train", "--stream", "energy", "--task", "cluster", "--window", "123",
                              "--poll", "0.2", env=cli_env(cli_gateway))

    async def queued_cluster() -> str | None:
        return await cli_db.fetchval("SELECT run_id FROM training_runs WHERE request->>'window' = '123'")

    failing = await wait_for(queued_cluster, 60, message="the second run was not queued")
    await registry.fail_run(cli_db, failing, "not enough rows: 3 < 100")
    result = await finish(process)
    assert result.code == 1
    assert "failed" in result.stdout and "not enough rows" in result.stdout


async def test_models_and_download(fluxo, cli_gateway: RunningGateway, tmp_path: Path) -> None:
    listed = await fluxo("models", "--json")
    assert listed.code == 0
    models = {m["task"]: m for m in listed.json() if m["active"]}
    assert set(models) >= {"cluster", "carbon"}
    table = await fluxo("models", "--stream", "energy", "--task", "carbon")
    assert "random_forest" in table.stdout and "carbon" in table.stdout

    target = tmp_path / "carbon.joblib"
    result = await fluxo("download", str(models["carbon"]["id"]), "-o", str(target))
    assert result.code == 0, result.stderr
    assert hashlib.sha256(target.read_bytes()).hexdigest() == models["carbon"]["sha256"]["model.joblib"]
    missing = await fluxo("download", "99999")
    assert missing.code == 1 and "error 404" in missing.stderr


async def test_watch_prints_predictions_as_they_arrive(cli_gateway: RunningGateway, cli_db: asyncpg.Pool) -> None:
    insert = """INSERT INTO predictions (event_id, stream, task, model_version, key, status, prediction, scored_at)
                VALUES ($1, 'energy', 'carbon', 1, 'Brazil', 'scored', $2, $3)"""
    await cli_db.execute(insert, "before-watch", 1.0, datetime.now(UTC))
    process = await start_cli("watch", "predictions", "--stream", "energy", "--count", "2", "--duration", "60",
                              "--interval", "0.2", "--json", env=cli_env(cli_gateway))
    assert process.stderr is not None
    started = await asyncio.wait_for(process.stderr.readline(), 60)
    assert b"watching predictions" in started
    await cli_db.execute(insert, "w-1", 420.5, datetime.now(UTC))
    await cli_db.execute(insert, "w-2", 380.25, datetime.now(UTC))
    result = await finish(process)
    assert result.code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    printed = [orjson.loads(line) for line in lines]
    assert [(p["event_id"], p["prediction"]) for p in printed] == [("w-1", 420.5), ("w-2", 380.25)]


async def test_watch_alerts_gives_up_after_its_duration(fluxo) -> None:
    result = await fluxo("watch", "alerts", "--count", "1", "--duration", "1", "--interval", "0.2")
    assert result.code == 1 and "saw 0 of 1 alerts" in result.stderr
