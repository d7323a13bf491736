"""The generator as a process on a real broker: paced until SIGTERM, drift on
SIGUSR1, CSV replay, the consumption stream end to end, and a readable
refusal of bad configuration."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from services.generator.drift import DriftControl
from services.generator.service import _drift_later
from shared.events import RawEvent
from shared.topics import Topics
from shared.validation import validate_batch
from tests.generator.streams import CONSUMPTION, people
from tests.helpers import wait_for
from tests.live import read_all
from tests.normalizer.kafka_reading import run_module
from tests.processes import REPO


async def test_runs_until_sigterm_and_sigusr1_toggles_drift(kafka_bootstrap: str, unique_name: Callable[..., str]) -> None:
    prefix = unique_name("t") + "."
    topic = Topics(prefix).raw("people")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.generator",
        cwd=REPO,
        env={
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "TOPIC_PREFIX": prefix,
            "GENERATOR_STREAMS": "people",
            "GENERATOR_RATE": "300",
            "GENERATOR_DRIFT_MAGNITUDE": "4",
            "LOG_JSON": "true",
        },
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async def incomes(at_least: int) -> list[float] | None:
            records = await read_all(kafka_bootstrap, topic)
            values = [RawEvent.model_validate_json(r.value).data["income"] for r in records]
            return values if len(values) >= at_least else None

        before = await wait_for(lambda: incomes(100), timeout=40, interval=0.5, message="no events generated")
        ceiling = max(before)
        process.send_signal(signal.SIGUSR1)

        async def drifted() -> bool:
            values = await incomes(0) or []
            return any(value > 3 * ceiling for value in values)

        await wait_for(drifted, timeout=20, interval=0.5, message="drift did not show after SIGUSR1")
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert b'"active": true' in stderr and b'"event": "drift"' in stderr


async def test_replays_a_csv_file_and_exits(kafka_bootstrap: str, unique_name: Callable[..., str], tmp_path: Path) -> None:
    prefix = unique_name("t") + "."
    csv = tmp_path / "owid.csv"
    csv.write_text(
        "country,year,renewables_share_energy,fossil_share_energy,carbon_intensity_elec,gdp\n"
        "Norway,2020,71.5,27.0,29.5,1\n"
        "Poland,2021,10.2,88.1,750,2\n"
        "Chad,2019,,,,3\n",
        encoding="utf-8",
    )
    code, stderr = await run_module(
        "services.generator",
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "TOPIC_PREFIX": prefix,
            "GENERATOR_REPLAY_FILE": str(csv),
            "GENERATOR_REPLAY_STREAM": "energy",
            "GENERATOR_RATE": "0",
            "LOG_JSON": "false",
        },
        timeout=60,
    )
    assert code == 0, stderr
    records = await read_all(kafka_bootstrap, Topics(prefix).raw("energy"))
    events = sorted((RawEvent.model_validate_json(r.value) for r in records), key=lambda e: e.key)
    assert [(e.key, e.source) for e in events] == [("Chad", "replay"), ("Norway", "replay"), ("Poland", "replay")]
    assert events[1].data == {
        "country": "Norway",
        "year": 2020,
        "renewables_share_energy": 71.5,
        "fossil_share_energy": 27.0,
        "carbon_intensity_elec": 29.5,
    }
    assert events[0].data == {"country": "Chad", "year": 2019}
    # Nothing else was generated.
    assert await read_all(kafka_bootstrap, Topics(prefix).raw("people")) == []


async def test_bad_configuration_exits_with_the_variable_named() -> None:
    code, stderr = await run_module(
        "services.generator", {"GENERATOR_RATE": "-5", "GENERATOR_STREAMS": "energy,Weather!"}, timeout=30
    )
    assert code != 0
    assert "GENERATOR_RATE" in stderr and "GENERATOR_STREAMS" in stderr and "Traceback" not in stderr


async def test_a_stream_without_simulation_exits_with_the_variable_named() -> None:
    # No broker listens at this address: the built-in declarations decide, and refuse it.
    code, stderr = await run_module(
        "services.generator",
        {"GENERATOR_STREAMS": "energy,weather", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "LOG_JSON": "false"},
        timeout=30,
    )
    assert code != 0
    assert "GENERATOR_STREAMS='energy,weather': no simulation declared for 'weather'" in stderr
    assert "Traceback" not in stderr


async def topic_names(bootstrap: str) -> set[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, request_timeout_ms=15_000)
    async with asyncio.timeout(30):
        await consumer.start()
        try:
            return await consumer.topics()
        finally:
            await consumer.stop()


async def test_generates_the_consumption_stream(kafka_bootstrap: str, unique_name: Callable[..., str]) -> None:
    prefix = unique_name("t") + "."
    topics = Topics(prefix)
    code, stderr = await run_module(
        "services.generator",
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "TOPIC_PREFIX": prefix,
            "GENERATOR_STREAMS": "consumption",
            "GENERATOR_COUNT": "600",
            "GENERATOR_RATE": "0",
            "GENERATOR_HOUSEHOLDS": "8",
            "GENERATOR_SIM_START": "2026-01-05T00:00:00Z",
            "GENERATOR_SIM_STEP": "3600",
            "LOG_JSON": "false",
        },
        timeout=90,
    )
    assert code == 0, stderr
    # The stream's topics and the shared ones are ensured; no other stream's.
    names = await topic_names(kafka_bootstrap)
    assert {name for name, _ in topics.all(["consumption"])} <= names
    assert topics.raw("energy") not in names
    events = [RawEvent.model_validate_json(r.value) for r in await read_all(kafka_bootstrap, topics.raw("consumption"))]
    assert len(events) == 600
    assert validate_batch(CONSUMPTION, [e.data for e in events]).reasons == {}
    assert all(e.stream == "consumption" and e.key == e.data["household_id"] for e in events)
    assert len({e.key for e in events}) == 8
    assert set(Counter(e.data["device_type"] for e in events)) >= {"fridge", "lighting", "heater"}
    stamps = sorted({datetime.fromisoformat(e.data["timestamp"]) for e in events})
    assert stamps[0] == datetime.fromisoformat("2026-01-05T00:00:00+00:00")
    assert {b - a for a, b in zip(stamps, stamps[1:])} == {timedelta(hours=1)}
    assert all(e.data["consumed_kwh"] >= 0 for e in events)


async def test_drift_switches_on_at_the_configured_time() -> None:
    source = people(1)
    control = DriftControl({"people": source}, ["people"], magnitude=0.5)
    stop = asyncio.Event()
    await _drift_later(control, 0.05, stop)
    assert control.active and source.drift == 0.5
    stopped = DriftControl({"people": people(1)}, ["people"], magnitude=0.5)
    stop.set()
    await _drift_later(stopped, 5, stop)  # a stop cancels the pending switch
    assert not stopped.active
