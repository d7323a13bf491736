"""Service processes for a benchmark phase, and what they cost.

Each process is ``python -m <module>`` with the phase's environment; a
sampler thread reads every process's RSS (psutil) twice a second, keeping
the peak, and the CPU seconds it used are read when it is stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
SAMPLE_INTERVAL_S = 0.5


class ProcessFailed(RuntimeError):
    pass


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    # A process that finishes its work (the generator with a count) may exit 0.
    may_exit: bool = False
    stopped: bool = False
    peak_rss: int = 0
    cpu_seconds: float = 0.0
    _ps: psutil.Process | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def sample(self) -> None:
        try:
            if self._ps is None:
                self._ps = psutil.Process(self.pid)
            self.peak_rss = max(self.peak_rss, self._ps.memory_info().rss)
            times = self._ps.cpu_times()
            self.cpu_seconds = times.user + times.system
        except psutil.Error:
            pass  # gone: the last sample stands

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is None or self.stopped or (self.may_exit and code == 0):
            return
        raise ProcessFailed(f"{self.name} exited with {code}:\n{self.tail()}")

    @property
    def peak_rss_mb(self) -> float:
        return round(self.peak_rss / 1024 / 1024, 1)


@dataclass
class Fleet:
    """The processes of one phase; a sampler keeps their peak RSS."""

    logdir: Path
    procs: list[Proc] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, name: str, args: Sequence[str], env: Mapping[str, str], *, may_exit: bool = False) -> Proc:
        self.logdir.mkdir(parents=True, exist_ok=True)
        log = self.logdir / f"{name}.log"
        with log.open("wb") as output:
            popen = subprocess.Popen(
                [sys.executable, *args],
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO), **env},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        proc = Proc(name, popen, log, may_exit=may_exit)
        self.procs.append(proc)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
            self._thread.start()
        return proc

    def service(self, name: str, module: str, env: Mapping[str, str], *, may_exit: bool = False) -> Proc:
        return self.start(name, ["-m", module], env, may_exit=may_exit)

    def _run(self) -> None:
        while not self._stop.is_set():
            for proc in list(self.procs):
                if proc.popen.poll() is None:
                    proc.sample()
            self._stop.wait(SAMPLE_INTERVAL_S)

    def check_alive(self) -> None:
        for proc in self.procs:
            proc.check_alive()

    def stop(self, proc: Proc, timeout: float = 30.0) -> int:
        """SIGTERM, then wait; a process that ignores it is killed."""
        proc.stopped = True
        if proc.popen.poll() is None:
            proc.sample()
            proc.popen.send_signal(signal.SIGTERM)
            try:
                proc.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
        return proc.popen.returncode

    def stop_all(self) -> None:
        # Reverse order: consumers of a stage stop before its producers.
        for proc in reversed(self.procs):
            self.stop(proc)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def memory_mb(self) -> dict[str, float]:
        return {proc.name: proc.peak_rss_mb for proc in self.procs}

    def cpu_seconds(self) -> dict[str, float]:
        return {proc.name: round(proc.cpu_seconds, 2) for proc in self.procs}


@contextmanager
def fleet(logdir: Path) -> Iterator[Fleet]:
    group = Fleet(logdir)
    try:
        yield group
    finally:
        group.stop_all()


def wait_until(predicate: object, timeout: float, what: str, fleet_: Fleet | None = None, interval: float = 0.2) -> None:
    """Poll a callable until it is truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if fleet_ is not None:
            fleet_.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} (waited {timeout:g} s)")
        time.sleep(interval)
