"""Exports of the pressure run, each killed mid-write and restarted: the
exporter as a real process (SIGKILL, then a fresh start), against the real
S3 server or a local directory."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import pyarrow as pa
import pyarrow.dataset as ds

from shared.db import create_pool
from shared.lake import manifest
from shared.lake.destination import Destination
from shared.lake.layout import TEMPORARY_ROOT, temporary_dir
from tests.helpers import wait_for
from tests.lake.conftest import PressureRun
from tests.processes import log_tail, service_process

# Long enough to SIGKILL the exporter between a file's temporary copy and its commit.
COMMIT_DELAY = 1.0
PLANTED = "half-written.parquet"


@dataclass(frozen=True)
class LakeExport:
    where: str
    destination: Destination
    export_id: str
    files_at_kill: int
    pending_at_kill: int
    planted: str  # a half-written temporary file left where the killed segment writes


def exporter_env(run: PressureRun, url: str, **extra: str) -> dict[str, str]:
    return {**run.env, "SERVICE_NAME": "exporter", "EXPORT_DESTINATION": url, "EXPORT_INTERVAL": "0",
            "EXPORT_POLL_SECONDS": "0.2", **extra}


async def export_status(pool: asyncpg.Pool, export_id: str) -> dict[str, Any]:
    status = await manifest.export_status(pool, export_id)
    assert status is not None
    return status


async def kill_mid_write_then_finish(run: PressureRun, where: str, url: str, destination: Destination,
                                     env: dict[str, str]) -> LakeExport:
    pool = await create_pool(run.dsn)
    export_id = uuid.uuid4().hex
    try:
        await manifest.queue_export(pool, export_id, manifest.COMMAND)
        first_log = run.log(f"exporter-{where}")
        with service_process("services.exporter", exporter_env(run, url, EXPORT_COMMIT_DELAY_SECONDS=str(COMMIT_DELAY),
                                                               **env), first_log) as process:

            async def mid_write() -> tuple[int, int] | None:
                """Files committed, and a segment planned whose file is being
                written (it sits COMMIT_DELAY between its temporary copy and its commit)."""
                if process.poll() is not None:
                    raise AssertionError(f"the exporter exited {process.returncode}:\n{log_tail(first_log)}")
                files = await pool.fetchval("SELECT count(*) FROM export_files WHERE export_id = $1", export_id)
                writing = await pool.fetchval(
                    """SELECT count(*) FROM export_segments s WHERE export_id = $1 AND status = 'pending'
                         AND NOT EXISTS (SELECT 1 FROM export_files f WHERE f.segment_id = s.id)""", export_id)
                return (files, writing) if files and writing else None

            files, pending = await wait_for(mid_write, 120, interval=0.05, message="the export committed a file")
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        segment = await pool.fetchval(
            "SELECT min(id) FROM export_segments WHERE destination = $1 AND status = 'pending'", destination.name)
        planted = f"{temporary_dir(segment)}/{PLANTED}"
        await asyncio.to_thread(plant, destination, planted, b"PAR1 cut short")

        second_log = run.log(f"exporter-{where}")
        with service_process("services.exporter", exporter_env(run, url, **env), second_log) as process:

            async def finished() -> dict[str, Any] | None:
                if process.poll() is not None:
                    raise AssertionError(f"the exporter exited {process.returncode}:\n{log_tail(second_log)}")
                status = await export_status(pool, export_id)
                if status["status"] == manifest.FAILED:
                    raise AssertionError(f"the export failed: {status['error']}")
                return status if status["status"] == manifest.DONE else None

            await wait_for(finished, 180, interval=0.2, message="the restarted exporter finished the export")
    finally:
        await pool.close()
    return LakeExport(where, destination, export_id, files, pending, planted)


def plant(destination: Destination, relative: str, data: bytes) -> None:
    """A file as a killed writer leaves it: written partly, never committed."""
    path = destination.path(relative)
    if destination.local:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with destination.filesystem.open_output_stream(path) as out:
        out.write(data)


def read_kind(destination: Destination, kind: str) -> pa.Table:
    """A kind's whole dataset as any reader sees it (Hive partitions as columns)."""
    dataset = ds.dataset(destination.path(kind), filesystem=destination.filesystem, format="parquet",
                         partitioning="hive")
    return dataset.to_table()


def temporaries(destination: Destination) -> list[str]:
    return [info.path for info in destination.files(TEMPORARY_ROOT)]
