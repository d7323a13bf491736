"""Small helpers shared by the local server launchers."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, Self, TypeVar

from .ports import port_open

T = TypeVar("T")


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code.

    A private thread gives it a fresh event loop, so launchers also work when
    called from code that already runs a loop (where asyncio.run would fail).
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coro)
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="fluxo-infra-probe", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def tail(path: Path, lines: int = 40) -> str:
    """Last lines of a log file for error messages ('' when unreadable).

    Java stack frames are left out: they would push the actual error message
    out of the tail.
    """
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    kept = [
        line
        for line in text.splitlines()
        if not line.startswith("\tat ") and not re.fullmatch(r"\s*\.\.\. \d+ more", line)
    ]
    return "\n".join(kept[-lines:])


def require_executables(*names: str, hint: str) -> None:
    """Fail early with a hint when a needed program is not on PATH."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not found on PATH: {hint}")


def may_apt_install() -> bool:
    """True when Debian packages can be installed here: we are root and have apt-get."""
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def apt_install(package: str, *, hint: str) -> None:
    """apt-get update, then install one Debian package (without recommends)."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", package],
    ):
        # Generous, but bounded: a mirror that stops answering must not hang `make test`.
        try:
            result = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=900)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{' '.join(command)} took over 15 minutes ({hint})") from None
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({hint}):\n{result.stderr[-2000:]}")


def wait_until_serving(
    process: subprocess.Popen[bytes], port: int, probe: Callable[[], object], timeout: float, interval: float,
    fail: Callable[[str], NoReturn],
) -> None:
    """Poll until ``port`` is open and ``probe()`` succeeds; ``fail(reason)``
    if the process exits first or ``timeout`` passes (with the last error)."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            fail(f"exited with code {process.returncode}")
        if port_open(port):
            try:
                probe()
                return
            except Exception as exc:  # noqa: BLE001 - not serving yet: keep polling
                last_error = exc
        time.sleep(interval)
    fail(f"not ready after {timeout:.0f} s (last error: {last_error!r})")


class LocalServer:
    """A server process this code starts and owns: a context manager that
    starts it on entry and always stops it (and deletes its data) on exit."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
