"""The console's background readers of Kafka, started by the first console
page a gateway serves (an API-only gateway never opens them) and stopped
with the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from fastapi import FastAPI, Request

from services.gateway.console.live.sampler import PipelineSampler
from services.gateway.console.live.tail import EventTail
from services.gateway.state import GatewayState

STOP_SECONDS = 10.0


@dataclass
class ConsoleRuntime:
    sampler: PipelineSampler
    tail: EventTail
    started_at: float = field(default_factory=time.time)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def start(cls, state: GatewayState) -> ConsoleRuntime:
        settings = state.settings
        timeout = settings.dependency_timeout_seconds
        runtime = cls(
            sampler=PipelineSampler(
                settings.kafka_bootstrap_servers, state.topics, state.catalog.names,
                settings.console_sample_seconds, timeout,
            ),
            tail=EventTail(
                settings.kafka_bootstrap_servers, state.topics, state.catalog.active,
                settings.console_recent_events, settings.console_backfill_events, timeout,
            ),
        )
        runtime._tasks = [
            asyncio.create_task(runtime.sampler.run(runtime._stop), name="console-sampler"),
            asyncio.create_task(runtime.tail.run(runtime._stop), name="console-tail"),
        ]
        return runtime

    @property
    def reading(self) -> bool:
        """Whether the event reader keeps up: it follows the topics and Kafka answered the last sample."""
        return self.tail.following and self.sampler.kafka_up is not False

    async def stop(self) -> None:
        self._stop.set()
        _, pending = await asyncio.wait(self._tasks, timeout=STOP_SECONDS)
        for task in pending:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.sampler.close()
        await self.tail.close()


def console_runtime(request: Request) -> ConsoleRuntime:
    """The app's runtime, started on first use."""
    app = request.app
    runtime: ConsoleRuntime | None = getattr(app.state, "console_runtime", None)
    if runtime is None:
        runtime = app.state.console_runtime = ConsoleRuntime.start(app.state.gateway)
    return runtime


async def stop_console(app: FastAPI) -> None:
    """Stop the runtime if a page started it (the gateway's lifespan calls this on shutdown)."""
    runtime: ConsoleRuntime | None = getattr(app.state, "console_runtime", None)
    if runtime is not None:
        app.state.console_runtime = None
        await runtime.stop()
