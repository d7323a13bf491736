"""Fluxo services as real processes (``python -m services.<name>``), for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def launch(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``python -m <module>`` with ``env`` added to ours, its output to ``log``."""
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", module], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **env},
            stdout=output, stderr=subprocess.STDOUT,
        )


def terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not stop within 30 s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def service_process(module: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m <module>`` with ``env`` added to ours; SIGTERM when done."""
    process = launch(module, env, log)
    try:
        yield process
    finally:
        terminate(process)


def log_tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


class Supervised:
    """One service process that the test kills and starts again, as a
    supervisor would; every start logs to a file of its own."""

    def __init__(self, module: str, env: dict[str, str], logs: Path) -> None:
        self.module = module
        self.name = module.rsplit(".", 1)[-1]
        self.env = env
        self.logs = logs
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.started_at = 0.0

    @property
    def log(self) -> Path:
        return self.logs / f"{self.name}-{self.starts}.log"

    def start(self) -> Supervised:
        self.starts += 1
        self.process = launch(self.module, self.env, self.log)
        self.started_at = time.monotonic()
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def sigkill(self) -> None:
        assert self.process is not None
        assert self.alive(), f"{self.name} was already dead (exit {self.process.returncode}):\n{log_tail(self.log)}"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.kills += 1

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop within 30 s."""
        if self.process is not None:
            terminate(self.process)
