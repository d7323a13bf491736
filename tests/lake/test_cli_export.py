"""``fluxo export`` end to end: the client asks the gateway (a process), the
exporter (a process) runs the export, the client waits and reports the files."""

from __future__ import annotations

import httpx
import orjson

from shared.db import create_pool
from tests.cli.conftest import cli_env, finish, start_cli
from tests.gateway.server import gateway_process
from tests.lake.conftest import PressureRun
from tests.lake.exports import exporter_env
from tests.processes import service_process
from tests.streams import PRESSURE

API_KEY = "lake-cli-key"


async def test_fluxo_export_waits_for_the_files(pressure_run: PressureRun, tmp_path) -> None:
    lake = tmp_path / "lake"
    pool = await create_pool(pressure_run.dsn)
    try:
        alerts = await pool.fetchval("SELECT count(*) FROM alerts")
    finally:
        await pool.close()
    with gateway_process(pressure_run.kafka, pressure_run.dsn, tmp_path, FLUXO_API_KEY=API_KEY) as gateway, \
            service_process("services.exporter", exporter_env(pressure_run, str(lake)), tmp_path / "exporter.log"):
        env = cli_env(gateway, FLUXO_API_KEY=API_KEY)
        done = await finish(await start_cli("export", "--stream", PRESSURE.name, "--kind", "predictions",
                                            "--kind", "alerts", "--poll", "0.2", "--json", env=env), 180)
        assert done.code == 0, done.stderr
        found = orjson.loads(done.stdout)
        assert found["status"] == "done" and found["destination"] == str(lake)
        parts = {(part["stream"], part["kind"]): part["rows"] for part in found["parts"]}
        assert parts == {(PRESSURE.name, "predictions"): len(pressure_run.raw), (PRESSURE.name, "alerts"): alerts}
        assert found["files"] == len(list(lake.rglob("*.parquet")))

        status = await finish(await start_cli("export-status", found["id"], env=env))
        assert status.code == 0 and f"export {found['id']} (command) to {lake}: done" in status.stdout

        refused = await finish(await start_cli("export", "--stream", "nowhere", env=env))
        assert refused.code == 1 and "streams[0]" in refused.stderr
        async with httpx.AsyncClient(base_url=gateway.url, headers={"X-API-Key": API_KEY}, timeout=30) as client:
            bad_kind = await client.post("/v1/exports", json={"kinds": ["features", "photos"]})
            assert bad_kind.status_code == 422 and bad_kind.json()["errors"][0]["field"] == "kinds[1]"
            assert (await client.get("/v1/exports/0123")).status_code == 404
            assert (await client.post("/v1/exports", json={}, headers={"X-API-Key": "wrong"})).status_code == 401
            listed = (await client.get("/v1/exports")).json()
            assert found["id"] in [row["id"] for row in listed]
