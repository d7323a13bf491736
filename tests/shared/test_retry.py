"""The one retry policy and the sorting of errors into transient or not (no broker needed)."""

from __future__ import annotations

import errno

import asyncpg
import pytest

from shared import retry
from shared.kafka.deadletter import TRUNCATED, fit
from shared.kafka.messages import Outgoing
from shared.kafka.send import MessageTooLarge, check_size, message_size


def test_back_off_grows_exponentially_with_jitter_up_to_a_cap() -> None:
    policy = retry.RetryPolicy(initial_s=0.25, max_s=10.0, jitter_s=0.25)
    firsts = {policy.delay(1) for _ in range(50)}
    assert all(0.25 <= d <= 0.5 for d in firsts) and len(firsts) > 1, "jitter spreads the first back-off"
    assert all(2.0 <= policy.delay(4) <= 2.25 for _ in range(20))
    assert all(policy.delay(n) <= 10.0 for n in range(1, 40)), "the cap holds"
    assert policy.delay(30) == 10.0


def retries(service: str, operation: str, outcome: str) -> float:
    return retry.RETRIES.labels(service, operation, outcome)._value.get()


@pytest.mark.asyncio
async def test_retry_counts_retries_and_recovery() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionResetError("reset")
        return "done"

    fast = retry.RetryPolicy(initial_s=0.001, max_s=0.01, jitter_s=0.001)
    assert await retry.retry(flaky, service="t1", operation="op", transient=retry.transient_os_error,
                             policy=fast) == "done"
    assert (retries("t1", "op", "retried"), retries("t1", "op", "recovered"), retries("t1", "op", "gave_up")) == (2, 1, 0)


@pytest.mark.asyncio
async def test_retry_that_runs_out_gives_up_loudly_and_a_permanent_error_is_not_retried() -> None:
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionRefusedError("down")

    fast = retry.RetryPolicy(initial_s=0.001, max_s=0.01, jitter_s=0.001)
    with pytest.raises(ConnectionRefusedError):
        await retry.retry(down, service="t2", operation="op", transient=retry.transient_os_error, attempts=3,
                          policy=fast)
    assert calls == 3 and retries("t2", "op", "gave_up") == 1 and retries("t2", "op", "retried") == 2

    async def forbidden() -> None:
        raise PermissionError(errno.EACCES, "denied")

    with pytest.raises(PermissionError):
        await retry.retry(forbidden, service="t3", operation="op", transient=retry.transient_os_error, policy=fast)
    assert retries("t3", "op", "retried") == 0


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.PostgresConnectionError("gone"),
        asyncpg.QueryCanceledError("canceling statement due to statement timeout"),
        asyncpg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
        asyncpg.DiskFullError("could not extend file"),
        asyncpg.OutOfMemoryError("out of memory"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.SerializationError("could not serialize access"),
        asyncpg.DeadlockDetectedError("deadlock detected"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.LockNotAvailableError("could not obtain lock"),
        ConnectionRefusedError(),
        TimeoutError(),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_outages_of_postgres_are_transient(error: BaseException) -> None:
    assert retry.transient_postgres(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00'),
        asyncpg.UntranslatableCharacterError("unsupported Unicode escape sequence"),
        asyncpg.InvalidTextRepresentationError("invalid input syntax for type uuid"),
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.NumericValueOutOfRangeError("value overflows numeric format"),
        PermissionError(errno.EACCES, "Permission denied"),
        FileNotFoundError(errno.ENOENT, "No such file or directory"),
        OSError(errno.EROFS, "Read-only file system"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_data_and_configuration_errors_are_not_transient(error: BaseException) -> None:
    assert not retry.transient_postgres(error)


def test_size_guard_refuses_a_message_over_the_limit() -> None:
    check_size(Outgoing("t", b"x" * 900, b"k"), limit=1000)
    with pytest.raises(MessageTooLarge, match="exceeds the 1000 byte"):
        check_size(Outgoing("t", b"x" * 1000, b"k"), limit=1000)


def test_fit_cuts_the_value_keeps_the_headers_and_says_so() -> None:
    headers = (("fluxo.error", b"why " * 50), ("fluxo.origin.offset", b"7"))
    message = Outgoing("dl", b"v" * 50_000, b"key", headers)
    cut = fit(message, 10_000)
    assert message_size(cut) <= 10_000
    assert cut.headers[:2] == headers and dict(cut.headers)[TRUNCATED] == b"50000"
    assert cut.key == b"key" and message.value.startswith(cut.value) and len(cut.value) > 9_000
    small = Outgoing("dl", b"v", b"key", headers)
    assert fit(small, 10_000) is small


def test_a_following_loop_backs_off_counts_its_retries_and_its_recovery() -> None:
    def sample(outcome: str) -> float:
        return retry.RETRIES.labels("tests", "follow", outcome)._value.get()

    backoff = retry.Backoff("tests", "follow")
    assert (sample("retried"), sample("recovered")) == (0, 0)  # declared at zero
    delays = [backoff.failed(ConnectionError("away")) for _ in range(8)]
    assert delays[0] <= retry.POLICY.initial_s + retry.POLICY.jitter_s
    assert delays[2] > delays[0] and max(delays) <= retry.POLICY.max_s + retry.POLICY.jitter_s
    backoff.succeeded()
    backoff.succeeded()  # a recovery is counted once
    assert (sample("retried"), sample("recovered")) == (8, 1)
    assert backoff.failed(ConnectionError("away again")) <= retry.POLICY.initial_s + retry.POLICY.jitter_s
