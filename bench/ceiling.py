"""Baseline 1: the same raw events through a bare aiokafka pass-through
(bench/passthrough.py), rate read from the sink records' timestamps."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.context import Bench
from bench.kafka_read import record_timestamps
from bench.measure import sustained_rate
from bench.procs import fleet
from bench.produce import produce_raw
from shared.kafka.admin import ensure_topics
from shared.streams import builtin_streams
from shared.topics import Topics


async def passthrough(bench: Bench, source_prefix: str | None = None, sent: dict[str, int] | None = None) -> dict[str, Any]:
    """Copy the raw events of ``source_prefix`` (or freshly produced ones)."""
    plan = bench.plan
    streams = [spec.name for spec in builtin_streams()]
    result: dict[str, Any] = {}
    if source_prefix is None or sent is None:
        source_prefix = bench.prefix("passthrough-source")
        await ensure_topics(bench.kafka, Topics(source_prefix).all(streams))
        sent = await produce_raw(bench.kafka, Topics(source_prefix), {stream: plan.pipeline_events for stream in streams})
        result["reused_pipeline_events"] = False
    else:
        result["reused_pipeline_events"] = True
    sink = Topics(bench.prefix("passthrough"))
    await ensure_topics(bench.kafka, sink.all(streams))
    count = sum(sent.values())
    with fleet(bench.logdir("passthrough")) as group:
        proc = group.start(
            "passthrough",
            ["-m", "bench.passthrough", bench.kafka, f"{sink.prefix}group", source_prefix, sink.prefix, str(count)],
            {},
            may_exit=True,
        )
        deadline = time.monotonic() + plan.pipeline_timeout_s
        while proc.popen.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        finished = proc.popen.poll() == 0
        result["memory_mb"] = group.memory_mb()["passthrough"]
        result["cpu_seconds"] = group.cpu_seconds()["passthrough"]
        if proc.popen.poll() not in (None, 0):
            raise RuntimeError(f"the pass-through failed:\n{proc.tail()}")
    stamps = await record_timestamps(bench.kafka, [sink.features(stream) for stream in streams])
    rate = sustained_rate((stamp / 1000.0, 1) for stamp in stamps)
    result.update(rate.as_dict())
    result["complete"] = finished and len(stamps) >= count
    return result
