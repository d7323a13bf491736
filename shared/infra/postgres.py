"""A throwaway PostgreSQL server run from the distribution's binaries.

See shared/POSTGRES_LOCAL.md: Debian keeps the server programs off PATH and
initdb refuses to run as root, so as root everything runs as `postgres`.
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ._common import LocalServer, apt_install, may_apt_install, run_coroutine, tail
from .ports import HOST, free_port

INSTALL_HINT = (
    "install Debian's postgresql package (apt-get install postgresql) or set DATABASE_URL"
)
SERVICE_USER = "postgres"

# Durability is pointless for a database that is deleted afterwards, and
# turning it off makes schema setup and writes in tests much faster.
SERVER_SETTINGS = (
    "-c", f"listen_addresses={HOST}",
    "-c", "fsync=off",
    "-c", "synchronous_commit=off",
    "-c", "full_page_writes=off",
    "-c", "max_connections=200",
)


def _has_server(bindir: Path) -> bool:
    return (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file()


def _major_version(bindir: str) -> int:
    match = re.search(r"/postgresql/(\d+)/bin$", bindir)
    return int(match.group(1)) if match else -1


def _locate_bindir() -> Path | None:
    if shutil.which("pg_config"):
        # pg_config may come from libpq-dev alone, so check for the server too.
        reported = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if reported and _has_server(Path(reported)):
            return Path(reported)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_major_version, reverse=True)
    return next((Path(c) for c in candidates if _has_server(Path(c))), None)


def find_server_bindir() -> Path:
    """Directory with initdb/pg_ctl/postgres, installing PostgreSQL if we may."""
    bindir = _locate_bindir()
    if bindir is None and may_apt_install():
        apt_install("postgresql", hint=INSTALL_HINT)
        bindir = _locate_bindir()
    if bindir is None:
        raise RuntimeError(f"no PostgreSQL server binaries found: {INSTALL_HINT}")
    return bindir


async def _select_one(dsn: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        await connection.fetchval("select 1")
    finally:
        await connection.close()


class LocalPostgres(LocalServer):
    """A PostgreSQL server in a temporary directory, on 127.0.0.1, trust auth.

    Use as a context manager, or call start() and stop(). `dsn` is the
    connection string once started.
    """

    def __init__(self, port: int | None = None, *, startup_timeout: float = 60.0) -> None:
        self.port = port
        self.startup_timeout = startup_timeout
        self.bindir: Path | None = None
        self.version: str | None = None  # e.g. "PostgreSQL 15.14", known after start()
        self.workdir: Path | None = None
        self.log_path: Path | None = None
        self._running = False

    @property
    def dsn(self) -> str:
        if not self._running or self.port is None:
            raise RuntimeError("LocalPostgres is not started")
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    @property
    def data_dir(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "data"

    def start(self) -> LocalPostgres:
        if self._running:
            return self
        self.bindir = find_server_bindir()
        self.version = self._server_version()
        atexit.register(self.stop)
        try:
            self._init_cluster()
            # Set first, so stop() also ends a server that missed the deadline.
            self._running = True
            self._start_server()
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._running:
            self._running = False
            stopped = self._pg_ctl("stop", "-m", "fast", "-w", "-t", "30")
            if stopped.returncode != 0:
                # Last resort; the data is disposable, so skip crash safety.
                self._pg_ctl("stop", "-m", "immediate", "-w", "-t", "10")
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        atexit.unregister(self.stop)

    def halt(self, mode: str = "immediate") -> None:
        """Stop the server but keep its data and port, to start it again with
        resume(): a database outage for fault tests ("immediate" is a crash:
        no checkpoint, connections cut)."""
        if not self._running:
            raise RuntimeError("LocalPostgres is not started")
        stopped = self._pg_ctl("stop", "-m", mode, "-w", "-t", "30")
        if stopped.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed:\n{stopped.stdout}{stopped.stderr}\n{self._log_tail()}")

    def resume(self) -> None:
        """Start a halted server again on its data and port; returns once it answers."""
        if not self._running:
            raise RuntimeError("LocalPostgres is not started")
        self._start_server()
        self._wait_until_ready()

    def _as_server_user(self, program: str, *args: str) -> list[str]:
        assert self.bindir is not None
        command = [str(self.bindir / program), *args]
        if os.geteuid() == 0:
            return ["runuser", "-u", SERVICE_USER, "--", *command]
        return command

    def _server_version(self) -> str:
        assert self.bindir is not None
        out = subprocess.run(
            [str(self.bindir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        match = re.search(r"\(PostgreSQL\) (\S+)", out)
        return f"PostgreSQL {match.group(1)}" if match else "PostgreSQL"

    def _init_cluster(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="fluxo-pg-"))
        self.log_path = self.workdir / "server.log"
        if os.geteuid() == 0:
            shutil.chown(self.workdir, user=SERVICE_USER, group=SERVICE_USER)
        result = subprocess.run(
            self._as_server_user(
                "initdb", "-D", str(self.data_dir), "-A", "trust", "-U", "postgres",
                "--no-sync", "-E", "UTF8",
                # C works with every encoding and does not depend on the host's LANG.
                "--locale=C",
            ),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{(result.stdout + result.stderr)[-3000:]}")

    def _start_server(self) -> None:
        assert self.workdir is not None
        self.port = self.port or free_port()
        server_options = ("-p", str(self.port), "-k", str(self.workdir), *SERVER_SETTINGS)
        # pg_ctl passes -o through a shell, hence the quoting. It waits (-w)
        # until the postmaster reports ready, and notices if it dies first.
        started = self._pg_ctl(
            "start", "-w", "-t", str(int(self.startup_timeout)),
            "-l", str(self.log_path), "-o", shlex.join(server_options),
            new_session=True,
        )
        if started.returncode != 0:
            raise RuntimeError(
                f"pg_ctl start failed:\n{started.stdout}{started.stderr}\n{self._log_tail()}"
            )

    def _pg_ctl(self, *args: str, new_session: bool = False) -> subprocess.CompletedProcess[str]:
        # A new session keeps a terminal's Ctrl-C away from the postmaster, so
        # the owner decides when and how it stops.
        return subprocess.run(
            self._as_server_user("pg_ctl", "-D", str(self.data_dir), *args),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            start_new_session=new_session,
        )

    def _wait_until_ready(self) -> None:
        # pg_ctl already waited for the server; a real query over TCP also
        # proves the address and trust authentication the tests will use.
        deadline = time.monotonic() + 10
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            try:
                run_coroutine(_select_one(self.dsn))
                return
            except Exception as exc:  # not accepting connections yet: keep polling
                last_error = exc
            time.sleep(0.1)
        raise RuntimeError(
            f"PostgreSQL started but refuses queries ({last_error!r})\n{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        log = tail(self.log_path) if self.log_path else ""
        return f"server log tail:\n{log}"
