"""The entrypoint shell of a worker: logging, /metrics, signals, asyncio.

``run_service(settings, main)`` calls ``main(stop)`` with an event that is set
on SIGTERM or SIGINT; ``main`` finishes its batch in hand, then returns and
closes its clients in its own ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable

import structlog

from shared.logs import configure_logging
from shared.metrics import start_metrics_server
from shared.settings import ServiceSettings

log = structlog.get_logger(__name__)


def install_stop_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def run_service(settings: ServiceSettings, main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    start_metrics_server(settings.metrics_port, settings.metrics_host)

    async def runner() -> None:
        stop = asyncio.Event()
        install_stop_handlers(stop)
        log.info("service_starting", metrics_port=settings.metrics_port)
        try:
            await main(stop)
        finally:
            log.info("service_stopped")

    asyncio.run(runner())


async def run_tasks(tasks: list[asyncio.Task[None]], stop: asyncio.Event) -> None:
    """Wait until ``stop`` is set or any task ends, re-raising a task's crash.

    A worker made of several tasks (a batch loop, a model watcher, a
    scheduler) is only whole while all of them run, so the first one to end
    ends the service rather than leaving it half alive.
    """
    stopping = asyncio.create_task(stop.wait(), name="stop")
    try:
        done, _ = await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    for task in done:
        if task is not stopping and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def finish_tasks(tasks: list[asyncio.Task[None]], grace: float) -> None:
    """After ``stop`` is set: let the tasks finish what they hold (a batch in
    hand gets committed) for up to ``grace`` seconds, then cancel the rest."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
