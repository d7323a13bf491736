"""The trainer service on the pipeline run's features topics: one train
command per task, for its memory (the issue exempts it from the 300 MB
target, but it is measured) and its run times as the service reports them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.context import Bench
from bench.procs import fleet
from bench.services import service_env
from shared.db import create_pool
from shared.events import TrainCommand
from shared.kafka import make_producer
from shared.kafka.clients import event_message, send_all
from shared.ml import registry
from shared.streams import builtin_streams
from shared.topics import Topics

TIMEOUT_S = 240


async def trainer_step(bench: Bench, prefix: str, dsn: str) -> dict[str, Any]:
    topics = Topics(prefix)
    env = service_env(bench, prefix, dsn, "trainer", TRAIN_INTERVAL="0",
                      TRAIN_WINDOW_SIZE=str(bench.plan.trainer_window))
    commands = [TrainCommand(stream=stream.name, task=task.name) for stream in builtin_streams() for task in stream.tasks]
    pool = await create_pool(dsn, max_size=1)
    try:
        with fleet(bench.logdir("trainer")) as group:
            group.service("trainer", "services.trainer", env)
            producer = make_producer(bench.kafka, "bench-commands")
            await producer.start()
            try:
                await send_all(producer, [event_message(topics.commands, c, key=c.stream) for c in commands])
            finally:
                await producer.stop()
            deadline = time.monotonic() + TIMEOUT_S
            runs: dict[str, Any] = {}
            while len(runs) < len(commands):
                group.check_alive()
                for command in commands:
                    run = await registry.get_run(pool, command.run_id)
                    if run is not None and run.status in ("done", "failed"):
                        runs[command.run_id] = run
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            memory = group.memory_mb()["trainer"]
    finally:
        await pool.close()
    report = []
    for run in runs.values():
        seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else None
        report.append({"stream": run.stream, "task": run.task, "status": run.status, "decision": run.decision,
                       "seconds": round(seconds, 2) if seconds is not None else None, "error": run.error})
    return {"trainer": {"memory_mb": memory, "window": bench.plan.trainer_window, "runs": report,
                        "complete": len(runs) == len(commands)}}
