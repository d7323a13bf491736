"""Pipeline throughput (raw topics to prediction rows), its memory, and the
scaling run with two consumer replicas.

Method: N raw events per stream are produced before any service starts;
then the normalizer and the consumer(s) start as processes and drain them.
The rate is read from the prediction rows: events after the first write
transaction divided by the time from the first transaction to the last
(bench.measure.sustained_rate), which leaves process start-up out.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import psutil

from bench import rows
from bench.context import Bench
from bench.measure import sustained_rate
from bench.models import PreparedModel, register_models
from bench.procs import Fleet, Proc, fleet
from bench.produce import produce_raw
from bench.profile import start_record, summarise
from bench.scrape import loop_metrics
from bench.services import consumer_env, normalizer_env
from shared.db import create_pool
from shared.kafka.admin import ensure_topics
from shared.streams import builtin_stream, builtin_streams
from shared.topics import Topics

POLL_S = 0.5


def expected_rows(sent: dict[str, int]) -> int:
    """Prediction rows the consumer writes: one per event and task."""
    return sum(count * len(builtin_stream(stream).tasks) for stream, count in sent.items())


async def wait_for_rows(dsn: str, expected: int, timeout: float, group: Fleet,
                        on_first: Any = None) -> tuple[int, bool]:
    """Poll the predictions table until ``expected`` rows; (rows, complete)."""
    pool = await create_pool(dsn, max_size=1)
    deadline = time.monotonic() + timeout
    seen_first = False
    try:
        while True:
            group.check_alive()
            async with pool.acquire() as connection:
                count = await rows.prediction_rows(connection)
            if count and not seen_first:
                seen_first = True
                if on_first is not None:
                    on_first()
            if count >= expected:
                return count, True
            if time.monotonic() > deadline:
                return count, False
            await asyncio.sleep(POLL_S)
    finally:
        await pool.close()


def _metrics_port(proc: Proc, envs: dict[str, dict[str, str]]) -> int:
    return int(envs[proc.name]["METRICS_PORT"])


async def throughput(
    bench: Bench,
    prepared: dict[tuple[str, str], PreparedModel],
    *,
    consumers: int = 1,
    phase: str = "pipeline",
    profile_dir: Path | None = None,
    after: Any = None,
) -> dict[str, Any]:
    """One throughput run; ``after(bench, prefix, dsn)`` runs once the rows are
    in, with the database still there (the trainer step uses it)."""
    plan = bench.plan
    prefix = bench.prefix(phase)
    topics = Topics(prefix)
    streams = [spec.name for spec in builtin_streams()]
    result: dict[str, Any] = {"consumers": consumers, "topic_prefix": prefix}
    async with bench.database(phase) as dsn:
        await register_models(dsn, prepared)
        await ensure_topics(bench.kafka, topics.all(streams))
        began = time.perf_counter()
        sent = await produce_raw(bench.kafka, topics, {stream: plan.pipeline_events for stream in streams})
        result["produce_seconds"] = round(time.perf_counter() - began, 2)
        result["events_sent"] = sent
        want = expected_rows(sent)
        envs: dict[str, dict[str, str]] = {"normalizer": normalizer_env(bench, prefix, dsn)}
        for i in range(consumers):
            name = "consumer" if consumers == 1 else f"consumer-{i + 1}"
            envs[name] = consumer_env(bench, prefix, dsn, name)
        profilers: list[tuple[str, Any, Path]] = []
        with fleet(bench.logdir(phase)) as group:
            procs = {name: group.service(name, f"services.{name.split('-')[0]}", env) for name, env in envs.items()}
            psutil.cpu_percent(None)

            def start_profiles() -> None:
                if profile_dir is None:
                    return
                seconds = 20 if not plan.quick else 3
                for name, proc in procs.items():
                    out = profile_dir / f"{phase}-{name}.txt"
                    profilers.append((name, start_record(proc.pid, seconds, out), out))
                    svg = profile_dir / f"{phase}-{name}.svg"
                    profilers.append((name + ":svg", start_record(proc.pid, seconds, svg, fmt="flamegraph"), svg))

            count, complete = await wait_for_rows(dsn, want, plan.pipeline_timeout_s, group, start_profiles)
            result["cpu_utilisation_percent"] = psutil.cpu_percent(None)
            result["loop"] = {name: loop_metrics(_metrics_port(proc, envs)) for name, proc in procs.items()}
            for _, recorder, _ in profilers:
                recorder.wait(timeout=120)
            exit_codes = {name: group.stop(proc) for name, proc in procs.items()}
            result["memory_mb"] = group.memory_mb()
            result["cpu_seconds"] = group.cpu_seconds()
            result["exit_codes"] = exit_codes
        if profilers:
            result["profile"] = {
                name: summarise(out.read_text()) for name, _, out in profilers if not name.endswith(":svg") and out.exists()
            }
        pool = await create_pool(dsn, max_size=1)
        try:
            async with pool.acquire() as connection:
                rate = sustained_rate(await rows.scored_points(connection))
                result["unscored_rows"] = await rows.unscored_rows(connection)
        finally:
            await pool.close()
        result.update(rate.as_dict())
        result["rows"] = count
        result["rows_expected"] = want
        result["complete"] = complete
        if not complete:
            result["note"] = f"stopped after {plan.pipeline_timeout_s:g} s with {count} of {want} rows"
        if after is not None:
            result.update(await after(bench, prefix, dsn))
    return result
