"""Run several processes with their output prefixed by name, stop them together.

A thread per process copies its merged stdout/stderr line by line to a honcho
Printer (``12:00:01 normalizer | ...``), the way `honcho start` shows a
Procfile. Unlike honcho's Manager it needs no signal handlers of its own, so
it also runs inside a test fixture, off the main thread's signal handling.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from honcho.colour import get_colours
from honcho.printer import Message, Printer


@dataclass
class Child:
    name: str
    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path | None
    colour: str
    process: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = None
    starts: int = 0
    # The last lines a process printed, for error messages when it dies.
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=60))


class Supervisor:
    def __init__(self, output: IO[str] | None = None, *, width: int = 10, stop_timeout: float = 20.0) -> None:
        self.printer = Printer(output=output) if output is not None else Printer()
        self.printer.width = width
        self.stop_timeout = stop_timeout
        self.children: dict[str, Child] = {}
        self._colours = get_colours()
        self._lock = threading.Lock()

    def say(self, text: str, name: str = "local") -> None:
        """Print a line of the supervisor's own, in the same format."""
        with self._lock:
            for line in text.splitlines() or [""]:
                self.printer.write(Message("line", line, datetime.now(), name, None))

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        if name in self.children:
            raise ValueError(f"process {name!r} is already started")
        child = Child(name, tuple(argv), dict(env), cwd, next(self._colours))
        self.children[name] = child
        return self._launch(child)

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """Start an ended process again with the same command and environment."""
        child = self.children[name]
        if child.process is not None and child.process.poll() is None:
            raise ValueError(f"process {name!r} is still running")
        if child.reader is not None:
            child.reader.join(timeout=5)
        return self._launch(child)

    def restarts(self) -> dict[str, int]:
        return {name: child.starts - 1 for name, child in self.children.items() if child.starts > 1}

    def _launch(self, child: Child) -> subprocess.Popen[bytes]:
        # A session of its own keeps the terminal's Ctrl-C away from the child:
        # the supervisor decides the order in which everything stops.
        process = subprocess.Popen(
            list(child.argv),
            env=child.env,
            cwd=child.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child.process = process
        child.starts += 1
        child.reader = threading.Thread(
            target=self._copy_output, args=(child, process), name=f"output-{child.name}", daemon=True
        )
        child.reader.start()
        return process

    def _copy_output(self, child: Child, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        with process.stdout:
            for raw in process.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                child.tail.append(line)
                with self._lock:
                    self.printer.write(Message("line", line, datetime.now(), child.name, child.colour))

    def exited(self) -> dict[str, int]:
        """Processes that have ended, with their exit codes."""
        return {
            name: code
            for name, child in self.children.items()
            if child.process is not None and (code := child.process.poll()) is not None
        }

    def running(self) -> list[str]:
        return [
            name
            for name, child in self.children.items()
            if child.process is not None and child.process.poll() is None
        ]

    def tail(self, name: str) -> str:
        return "\n".join(self.children[name].tail)

    def stop(self, names: Sequence[str] | None = None) -> dict[str, int]:
        """SIGTERM the given processes (default: all) together, SIGKILL what is
        left after ``stop_timeout``; returns their exit codes."""
        chosen = [self.children[name] for name in (names if names is not None else list(self.children))]
        for child in chosen:
            if child.process is not None and child.process.poll() is None:
                _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        codes: dict[str, int] = {}
        for child in chosen:
            if child.process is None:
                continue
            try:
                codes[child.name] = child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} ignored SIGTERM for {self.stop_timeout:g} s: killing it")
                _signal_group(child.process, signal.SIGKILL)
                codes[child.name] = child.process.wait()
            if child.reader is not None:
                child.reader.join(timeout=5)
        return codes


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # The child leads its own process group, so helpers it spawned stop too.
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
