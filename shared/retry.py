"""The one retry policy every retry loop uses, and the errors worth retrying.

Policy: exponential back-off with jitter and a cap (tenacity's
``wait_exponential_jitter``): 0.25 s, 0.5 s, 1 s, ... plus up to 0.25 s of
jitter, never more than 10 s. Jitter keeps replicas that failed together
from retrying in lock-step against a broker or database coming back.

Every retry is counted in ``fluxo_retries_total{service,operation,outcome}``:

- ``retried``: an attempt failed and another follows after the back-off;
- ``recovered``: an attempt succeeded after one or more failures;
- ``gave_up``: no more attempts (a bounded retry ran out, or the error is not
  one that waiting fixes); this is also logged, never silent.

Which errors are transient (waiting fixes them) is decided here once:
PostgreSQL by SQLSTATE class, files by errno.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
import structlog
from prometheus_client import Counter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

log = structlog.get_logger(__name__)

RETRIES = Counter(
    "fluxo_retries_total",
    "Retries of a failed operation: retried (another attempt follows), recovered (succeeded after failures), "
    "gave_up (no more attempts).",
    ["service", "operation", "outcome"],
)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    initial_s: float = 0.25
    max_s: float = 10.0
    jitter_s: float = 0.25

    def wait(self) -> wait_exponential_jitter:
        return wait_exponential_jitter(multiplier=self.initial_s, max=self.max_s, jitter=self.jitter_s)

    def delay(self, attempt: int) -> float:
        """The back-off after failed attempt number ``attempt`` (1-based), for
        loops that retry across iterations rather than around one call."""
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = max(attempt, 1)
        return self.wait()(state)


POLICY = RetryPolicy()


def count(service: str, operation: str, outcome: str) -> None:
    RETRIES.labels(service, operation, outcome).inc()


def declare(service: str, operation: str) -> None:
    """Make the series exist at zero, so "no retries" shows as 0, not absent."""
    for outcome in ("retried", "recovered", "gave_up"):
        RETRIES.labels(service, operation, outcome)


async def retry(
    call: Callable[[], Awaitable[T]],
    *,
    service: str,
    operation: str,
    transient: Callable[[BaseException], bool],
    attempts: int = 5,
    policy: RetryPolicy = POLICY,
) -> T:
    """``call()`` until it succeeds, retrying transient errors with the policy's
    back-off at most ``attempts`` times in all; the last error is raised."""
    failures = 0

    def before_sleep(state: RetryCallState) -> None:
        nonlocal failures
        failures += 1
        count(service, operation, "retried")
        error = state.outcome.exception() if state.outcome else None
        log.warning("retrying", service=service, operation=operation, attempt=state.attempt_number,
                    error=f"{type(error).__name__}: {error}", backoff_s=round(state.upcoming_sleep, 3))

    retrying = AsyncRetrying(
        retry=retry_if_exception(transient),
        wait=policy.wait(),
        stop=stop_after_attempt(attempts),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        result = await retrying(call)
    except Exception as error:
        if failures or transient(error):
            count(service, operation, "gave_up")
            log.error("retry_gave_up", service=service, operation=operation, attempts=failures + 1,
                      error=f"{type(error).__name__}: {error}")
        raise
    if failures:
        count(service, operation, "recovered")
    return result


class Backoff:
    """The policy for a loop that retries across its iterations (a follower
    that polls until stopped): ``failed`` counts a retry and gives the wait,
    ``succeeded`` counts a recovery after failures."""

    def __init__(self, service: str, operation: str, policy: RetryPolicy = POLICY) -> None:
        self.service = service
        self.operation = operation
        self.policy = policy
        self.failures = 0
        declare(service, operation)

    def failed(self, error: BaseException) -> float:
        self.failures += 1
        count(self.service, self.operation, "retried")
        delay = self.policy.delay(self.failures)
        log.warning("retrying", service=self.service, operation=self.operation, attempt=self.failures,
                    error=f"{type(error).__name__}: {error}", backoff_s=round(delay, 3))
        return delay

    def succeeded(self) -> None:
        if self.failures:
            count(self.service, self.operation, "recovered")
            self.failures = 0


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds`` unless ``stop`` is set first (a stopping service does not sit out its back-off)."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


# PostgreSQL errors that waiting fixes: the server away or restarting
# (connection class 08, operator intervention class 57 which includes
# statement_timeout's query_canceled and admin/crash shutdown), a read-only
# server after a failover (25006), insufficient resources (class 53: disk
# full, out of memory, too many connections), transaction rollbacks (class
# 40: serialization failure, deadlock), a lock not available (55P03) and
# system/I-O errors (class 58). Data errors (class 22: invalid text, a NUL
# character, ...) and constraint violations (23) are the record's own fault
# and are not here: they go to isolation and the dead letters.
TRANSIENT_POSTGRES: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,
    asyncpg.ReadOnlySQLTransactionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.TransactionRollbackError,
    asyncpg.LockNotAvailableError,
    asyncpg.PostgresSystemError,
)

# File and socket errno values that waiting fixes. ENOSPC and EDQUOT are here
# on purpose: a full disk is a resource outage like PostgreSQL's disk full
# (an operator frees space and the work goes on, nothing is lost), while a
# permission, a missing or read-only directory is a configuration error that
# no amount of waiting fixes.
TRANSIENT_ERRNO = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EAGAIN,
        errno.EINTR,
        errno.EIO,
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.ENETDOWN,
        errno.ETIMEDOUT,
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
    }
)


def transient_os_error(error: BaseException) -> bool:
    if isinstance(error, ConnectionError | TimeoutError | socket.gaierror):
        return True
    return isinstance(error, OSError) and error.errno in TRANSIENT_ERRNO


def transient_postgres(error: BaseException) -> bool:
    return isinstance(error, TRANSIENT_POSTGRES) or transient_os_error(error)
