"""Test helpers: poll for a condition instead of sleeping and hoping."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_for(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float,
    interval: float = 0.1,
    message: str = "condition not met",
) -> T:
    """Poll predicate (sync or async) until it returns something truthy.

    Returns that value, so a test can wait for and use a result in one step.
    Raises AssertionError with message if it is still falsy after timeout
    seconds; exceptions from predicate propagate unchanged.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() >= deadline:
            raise AssertionError(f"{message} (waited {timeout:g} s)")
        await asyncio.sleep(interval)
