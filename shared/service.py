"""The entrypoint shell of a worker: logging, /metrics, signals, asyncio.

``run_service(settings, main)`` calls ``main(stop)`` with an event that is set
on SIGTERM or SIGINT; ``main`` finishes its batch in hand, then returns and
closes its clients in its own ``finally``.
"""

from __future__ import annotations

import asyncio
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
