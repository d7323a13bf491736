"""End-to-end latency at a fixed rate: the generator service sends events at
1,000 per second (all streams together) through the running normalizer and
consumer; per event, latency is its raw event's produced_at (the consumer
stores it on the prediction row) to the row's scored_at (the start of the
consumer's write transaction). Both clocks are this machine's."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from bench import rows
from bench.context import Bench
from bench.measure import latency_summary
from bench.models import PreparedModel, register_models
from bench.pipeline import expected_rows, wait_for_rows
from bench.procs import fleet
from bench.produce import produce_raw
from bench.services import consumer_env, normalizer_env, service_env
from shared.db import create_pool
from shared.kafka.admin import ensure_topics
from shared.streams import builtin_streams
from shared.topics import Topics

WARMUP_EVENTS = 50  # per stream, to have every service joined and warm


async def latency(bench: Bench, prepared: dict[tuple[str, str], PreparedModel]) -> dict[str, Any]:
    plan = bench.plan
    prefix = bench.prefix("latency")
    topics = Topics(prefix)
    # Every built-in stream: the generator service simulates each of them.
    streams = [spec.name for spec in builtin_streams()]
    per_stream_rate = plan.latency_rate / len(streams)
    per_stream = int(per_stream_rate * plan.latency_seconds)
    result: dict[str, Any] = {"rate": plan.latency_rate, "seconds": plan.latency_seconds}
    async with bench.database("latency") as dsn:
        await register_models(dsn, prepared)
        await ensure_topics(bench.kafka, topics.all(streams))
        with fleet(bench.logdir("latency")) as group:
            group.service("normalizer", "services.normalizer", normalizer_env(bench, prefix, dsn))
            group.service("consumer", "services.consumer", consumer_env(bench, prefix, dsn))
            warm = await produce_raw(bench.kafka, topics, {stream: WARMUP_EVENTS for stream in streams}, seed=21)
            warm_rows = expected_rows(warm)
            _, ready = await wait_for_rows(dsn, warm_rows, 120, group)
            if not ready:
                raise RuntimeError("the pipeline did not score the warm-up events in 120 s")
            since = datetime.now(UTC)
            generator = group.service("generator", "services.generator", service_env(
                bench, prefix, dsn, "generator",
                GENERATOR_RATE=f"{per_stream_rate:g}",
                GENERATOR_COUNT=str(per_stream),
                GENERATOR_SEED="23",
            ), may_exit=True)
            deadline = time.monotonic() + plan.latency_seconds + 60
            while generator.popen.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            if generator.popen.poll() != 0:
                raise RuntimeError(f"the generator did not finish cleanly:\n{generator.tail()}")
            want = warm_rows + expected_rows({stream: per_stream for stream in streams})
            count, complete = await wait_for_rows(dsn, want, 60, group)
            result["memory_mb"] = group.memory_mb()
        pool = await create_pool(dsn, max_size=1)
        try:
            async with pool.acquire() as connection:
                values = await rows.latencies_ms(connection, since)
                events, span = await rows.produced_span(connection, since)
        finally:
            await pool.close()
    result["latency_ms"] = latency_summary(values)
    result["events"] = events
    result["achieved_rate"] = round(events / span, 1) if span else None
    result["complete"] = complete
    return result
