"""Every PostgreSQL read of a page runs under a deadline: a database that is
down or slow becomes a note on the page, never a page that hangs or fails."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import structlog

from services.gateway.errors import UNAVAILABLE_ERRORS

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Outage:
    """What could not be read, and why (shown in place of the data)."""

    what: str
    reason: str

    def __str__(self) -> str:
        return f"{self.what}: {self.reason}"


async def guarded(what: str, timeout: float, call: Awaitable[T]) -> T | Outage:
    try:
        async with asyncio.timeout(timeout):
            return await call
    except UNAVAILABLE_ERRORS as error:
        reason = "no answer in time" if isinstance(error, TimeoutError) else f"{type(error).__name__}: {error}"[:200]
        log.info("console_read_failed", what=what, reason=reason)
        return Outage(what, reason)
