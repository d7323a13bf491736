"""One pressure run for the lake's tests: the normalizer and the consumer as
processes on a real broker and PostgreSQL (an active anomaly model, so every
event is scored and some raise alerts), fed by the generator over several
simulated hours of today (UTC)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from pyarrow.fs import FileSelector, FileType

from shared.db import apply_migrations, create_pool
from shared.kafka.admin import ensure_topics
from shared.infra.s3 import S3Endpoint
from shared.kafka.partitions import topic_partitions
from shared.lake.destination import ObjectStoreSettings, open_destination
from shared.months import day_of
from shared.topics import Topics
from tests.gateway.server import sync_database
from tests.helpers import wait_for
from tests.live import fresh_bucket_name, read_all
from tests.ml.factory import register
from tests.processes import REPO, log_tail, service_process
from tests.streams import PRESSURE

SENSORS = 4
EVENTS = 160  # 40 rounds of the 4 sensors, 15 simulated minutes apart: 10 hours
SIM_STEP = 900
ANOMALY_RATE = 0.1


@dataclass(frozen=True)
class PressureRun:
    kafka: str
    dsn: str
    topics: Topics
    workdir: Path
    env: dict[str, str]  # what every service of the run is started with
    start: datetime  # the first simulated reading
    raw: list[dict[str, Any]]  # the raw events, decoded
    features: list[Any]  # the features messages (ConsumerRecords)

    @property
    def artifact_dir(self) -> Path:
        return self.workdir / "artifacts"

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}-{uuid.uuid4().hex[:6]}.log"


async def _prepare(dsn: str, kafka: str, topics: Topics, artifacts: Path) -> None:
    await ensure_topics(kafka, topics.all([PRESSURE.name]))
    pool = await create_pool(dsn)
    try:
        await apply_migrations(pool)
        await register(pool, artifacts, PRESSURE, "anomaly", n=800)
    finally:
        await pool.close()


async def committed_all(kafka: str, group: str, topic: str) -> bool:
    """Whether ``group`` committed every partition of ``topic`` that holds
    messages to its end (4 sensors may leave a partition empty)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        ends = await consumer.end_offsets(await topic_partitions(consumer, [topic]))
        return all(end == 0 or (tp in committed and committed[tp].offset >= end) for tp, end in ends.items())
    finally:
        await consumer.stop()
        await admin.close()


async def _wait_until_scored(kafka: str, dsn: str, topics: Topics, group: str) -> None:
    pool = await create_pool(dsn)
    try:
        async def scored() -> bool:
            raw = len(await read_all(kafka, topics.raw(PRESSURE.name)))
            features = len(await read_all(kafka, topics.features(PRESSURE.name)))
            predictions = await pool.fetchval("SELECT count(*) FROM predictions WHERE model_version > 0")
            readings = await pool.fetchval("SELECT count(*) FROM entity_readings")
            return raw == EVENTS and features == raw and predictions == raw and readings == raw

        await wait_for(scored, 180, interval=1, message="every generated reading normalized, scored and in the history")
        await wait_for(lambda: committed_all(kafka, group, topics.features(PRESSURE.name)), 60, interval=1,
                       message="the consumer committed every features offset")
    finally:
        await pool.close()


@pytest.fixture(scope="package")
def pressure_run(kafka_bootstrap: str, postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PressureRun]:
    workdir = tmp_path_factory.mktemp("lake")
    topics = Topics(f"lake-{uuid.uuid4().hex[:8]}.")
    start = day_of(datetime.now(UTC))
    with sync_database(postgres_dsn, "lake") as dsn:
        (workdir / "artifacts").mkdir()
        asyncio.run(_prepare(dsn, kafka_bootstrap, topics, workdir / "artifacts"))
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "DATABASE_URL": dsn,
            "TOPIC_PREFIX": topics.prefix,
            "ARTIFACT_DIR": str(workdir / "artifacts"),
            "LOG_JSON": "false",
        }
        group = f"{topics.prefix}consumer"
        logs = {name: workdir / f"{name}.log" for name in ("normalizer", "consumer", "generator")}
        with ExitStack() as stack:
            stack.enter_context(service_process("services.normalizer", {
                **env, "SERVICE_NAME": "normalizer", "NORMALIZER_STREAMS": PRESSURE.name}, logs["normalizer"]))
            stack.enter_context(service_process("services.consumer", {
                **env, "SERVICE_NAME": "consumer", "CONSUMER_STREAMS": PRESSURE.name}, logs["consumer"]))
            generator = subprocess.run(
                [sys.executable, "-m", "services.generator"], cwd=REPO, capture_output=True, timeout=120, check=False,
                env={**os.environ, "PYTHONPATH": str(REPO), **env, "SERVICE_NAME": "generator", "GENERATOR_STREAMS": PRESSURE.name,
                     "GENERATOR_COUNT": str(EVENTS), "GENERATOR_RATE": "0", "GENERATOR_SENSORS": str(SENSORS),
                     "GENERATOR_SIM_START": start.isoformat(), "GENERATOR_SIM_STEP": str(SIM_STEP),
                     "GENERATOR_ANOMALY_RATE": str(ANOMALY_RATE)},
            )
            assert generator.returncode == 0, generator.stderr.decode()[-3000:]
            try:
                asyncio.run(_wait_until_scored(kafka_bootstrap, dsn, topics, group))
            except AssertionError as error:
                tails = "\n".join(f"--- {name}\n{log_tail(path, 20)}" for name, path in logs.items())
                raise AssertionError(f"{error}\n{tails}") from None
        raw = [orjson.loads(record.value) for record in asyncio.run(read_all(kafka_bootstrap, topics.raw(PRESSURE.name)))]
        features = asyncio.run(read_all(kafka_bootstrap, topics.features(PRESSURE.name)))
        yield PressureRun(kafka_bootstrap, dsn, topics, workdir, env, start, raw, features)



@pytest.fixture(scope="package")
def lake_bucket(s3_server: S3Endpoint) -> Iterator[str]:
    """A bucket of the package's own on the real S3 server."""
    name = fresh_bucket_name("lake")
    filesystem = s3_server.filesystem(allow_bucket_creation=True, allow_bucket_deletion=True)
    filesystem.create_dir(name)
    yield name
    remove_bucket(filesystem, name)


def remove_bucket(filesystem: Any, name: str) -> None:
    """Delete a bucket with everything in it, deepest first: the S3 server
    refuses to delete a directory marker that still has children."""
    entries = filesystem.get_file_info(FileSelector(name, recursive=True, allow_not_found=True))
    for info in sorted(entries, key=lambda info: info.path.count("/"), reverse=True):
        if info.type == FileType.File:
            filesystem.delete_file(info.path)
        elif filesystem.get_file_info(info.path).type == FileType.Directory:
            filesystem.delete_dir(info.path)
    filesystem.delete_dir(name)


@pytest.fixture(scope="package")
def lake_exports(pressure_run: PressureRun, s3_server: S3Endpoint, lake_bucket: str,
                 tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The run exported to the S3 server and to a local directory, each export
    killed mid-write and finished by a restarted exporter."""
    from tests.lake.exports import kill_mid_write_then_finish

    local = tmp_path_factory.mktemp("lake-dir") / "lake"
    s3_store = {**s3_server.environment(), "S3_MAX_ATTEMPTS": "2"}
    places = {
        "s3": (f"s3://{lake_bucket}/lake", s3_store),
        "local": (str(local), {}),
    }
    exports = {}
    for where, (url, env) in places.items():
        destination = open_destination(url, ObjectStoreSettings(**{k.lower(): v for k, v in env.items()}))
        exports[where] = asyncio.run(kill_mid_write_then_finish(pressure_run, where, url, destination, env))
    return exports
