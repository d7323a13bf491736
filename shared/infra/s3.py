"""A throwaway S3-compatible object store: Versity's versitygw over a directory.

versitygw is an Apache-2.0 S3 gateway; its posix backend keeps every bucket
as a directory and every object as a file, and it checks SigV4 signatures
and the region like AWS does. There is no release binary to download here,
so it is built once from the Go module proxy into the cache (see
ensure_s3_server); the build needs Go and takes a few minutes on a cold cache.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

from ._common import LocalServer, require_executables, tail, wait_until_serving
from .kafka import cache_root
from .ports import HOST, free_port

if TYPE_CHECKING:
    from pyarrow.fs import S3FileSystem

VERSITYGW_VERSION = "v1.8.0"
VERSITYGW_PACKAGE = "github.com/versity/versitygw/cmd/versitygw"
DEFAULT_REGION = "us-east-1"
# A cold build downloads ~340 MB of modules and compiles for a few minutes on
# two idle cores; far longer on a loaded machine, hence the wide margin.
BUILD_TIMEOUT = 40 * 60.0
GO_HINT = (
    "install Go 1.25 or newer (it builds the versitygw S3 server once), "
    "or set S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
)


@dataclass(frozen=True)
class S3Endpoint:
    """Where an S3-compatible server answers and the credentials it accepts."""

    url: str  # e.g. http://127.0.0.1:9000: path-style addressing, scheme included
    access_key: str
    secret_key: str
    region: str = DEFAULT_REGION

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> S3Endpoint | None:
        """The server given by S3_ENDPOINT_URL and the AWS_* credentials, if any.

        Raises ValueError when the address is there but its credentials are not.
        """
        url = environ.get("S3_ENDPOINT_URL")
        if not url:
            return None
        credentials = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        missing = [name for name in credentials if not environ.get(name)]
        if missing:
            raise ValueError(f"S3_ENDPOINT_URL is set but not {' nor '.join(missing)}")
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        return cls(url, environ["AWS_ACCESS_KEY_ID"], environ["AWS_SECRET_ACCESS_KEY"], region)

    def environment(self) -> dict[str, str]:
        """The variables that from_environment reads back."""
        return {
            "S3_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
        }

    def filesystem(self, **options: object) -> S3FileSystem:
        """A pyarrow S3 filesystem on this server; options override the defaults.

        The region must be the server's: SigV4 signs it, and versitygw (like
        AWS) refuses a request signed for another one. With an endpoint
        override pyarrow addresses buckets path-style, which every
        S3-compatible server understands.
        """
        from pyarrow.fs import S3FileSystem

        settings: dict[str, object] = {
            "endpoint_override": self.url,
            "scheme": urlsplit(self.url).scheme or "http",
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "region": self.region,
            "connect_timeout": 5.0,
            "request_timeout": 60.0,
            **options,
        }
        return S3FileSystem(**settings)


def probe_s3(endpoint: S3Endpoint) -> None:
    """Raise unless the server answers a signed ListBuckets with these credentials.

    An open port is not enough: it also proves the keys and region work.
    """
    from pyarrow.fs import AwsStandardS3RetryStrategy, FileSelector

    filesystem = endpoint.filesystem(
        connect_timeout=2.0,
        request_timeout=5.0,
        retry_strategy=AwsStandardS3RetryStrategy(max_attempts=1),
    )
    filesystem.get_file_info(FileSelector("", recursive=False))


def s3_server_path(version: str = VERSITYGW_VERSION) -> Path:
    """Where the built versitygw binary lives in the cache (it may not exist yet)."""
    return cache_root() / f"versitygw-{version}" / "versitygw"


def is_built(version: str = VERSITYGW_VERSION) -> bool:
    binary = s3_server_path(version)
    return binary.is_file() and os.access(binary, os.X_OK)


def _build_environment(staging: Path) -> dict[str, str]:
    # Everything Go writes stays in the staging directory, so a cold build is
    # really cold, and the ~800 MB of modules and build cache go away with it.
    return {
        **os.environ,
        "GOBIN": str(staging / "bin"),
        "GOPATH": str(staging / "gopath"),
        "GOMODCACHE": str(staging / "gopath" / "pkg" / "mod"),
        "GOCACHE": str(staging / "gocache"),
        # Read-write module files, so the staging directory can be deleted.
        "GOFLAGS": "-modcacherw",
        # A static binary: no C toolchain needed, and the posix backend is pure Go.
        "CGO_ENABLED": "0",
    }


def ensure_s3_server(
    version: str = VERSITYGW_VERSION, on_build: Callable[[str], None] | None = None
) -> Path:
    """Return the path of a versitygw binary, building it with Go if needed.

    on_build, if given, hears about a build before it starts (it takes minutes).
    """
    binary = s3_server_path(version)
    if is_built(version):
        return binary
    require_executables("go", hint=GO_HINT)
    if on_build is not None:
        on_build(
            f"building the S3 server (versitygw {version}) with Go, once; "
            "a cold build takes a few minutes"
        )
    home = binary.parent
    home.parent.mkdir(parents=True, exist_ok=True)
    # Build next to the final place and rename at the end: an interrupted
    # build then never leaves a directory that looks usable.
    staging = Path(tempfile.mkdtemp(prefix=f"versitygw-{version}-build-", dir=home.parent))
    try:
        try:
            result = subprocess.run(
                ["go", "install", "-trimpath", "-ldflags=-s -w", f"{VERSITYGW_PACKAGE}@{version}"],
                env=_build_environment(staging),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            minutes = BUILD_TIMEOUT / 60
            raise RuntimeError(f"building versitygw {version} took over {minutes:.0f} min") from None
        if result.returncode != 0:
            # Hundreds of "go: downloading" lines would bury the actual error.
            lines = (result.stdout + result.stderr).splitlines()
            output = "\n".join(line for line in lines if not line.startswith("go: downloading"))[-4000:]
            raise RuntimeError(f"building versitygw {version} with Go failed ({GO_HINT}):\n{output}")
        if home.is_dir() and not any(home.iterdir()):
            home.rmdir()
        try:
            (staging / "bin").rename(home)
        except OSError:
            # Another process finished the same build first; use its copy.
            if not is_built(version):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return binary


class LocalS3(LocalServer):
    """versitygw on 127.0.0.1 serving a temporary directory, with fresh keys.

    Use as a context manager, or call start() and stop(). `endpoint` says
    where it answers and with which credentials once started.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        version: str = VERSITYGW_VERSION,
        region: str = DEFAULT_REGION,
        startup_timeout: float = 30.0,
    ) -> None:
        self.port = port
        self.version = version
        self.region = region
        self.startup_timeout = startup_timeout
        # A fresh pair per server: nothing outside this process knows them.
        self.access_key = "FLUXO" + secrets.token_hex(8).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self.workdir: Path | None = None
        self.log_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def endpoint(self) -> S3Endpoint:
        if self._process is None or self.port is None:
            raise RuntimeError("LocalS3 is not started")
        return S3Endpoint(f"http://{HOST}:{self.port}", self.access_key, self.secret_key, self.region)

    @property
    def data_dir(self) -> Path:
        """Buckets are its directories and objects the files below them."""
        assert self.workdir is not None
        return self.workdir / "data"

    def start(self) -> LocalS3:
        if self._process is not None:
            return self
        binary = ensure_s3_server(self.version)
        atexit.register(self.stop)
        try:
            self._launch(binary)
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()  # versitygw shuts down on SIGTERM
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        atexit.unregister(self.stop)

    def _launch(self, binary: Path) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="fluxo-s3-"))
        self.data_dir.mkdir()
        self.port = self.port or free_port()
        self.log_path = self.workdir / "server.log"
        self._log_file = self.log_path.open("wb")
        # Keys go in the environment, not on the command line where `ps` shows them.
        environment = {
            **os.environ,
            "ROOT_ACCESS_KEY_ID": self.access_key,
            "ROOT_SECRET_ACCESS_KEY": self.secret_key,
        }
        # A new session keeps a terminal's Ctrl-C away from the server, so the
        # owner decides when and how it stops. Its one-line-per-request log
        # stays on: its tail explains a failed start or a refused request.
        self._process = subprocess.Popen(
            [str(binary), "--port", f"{HOST}:{self.port}", "--region", self.region,
             "posix", str(self.data_dir)],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_until_ready(self) -> None:
        assert self._process is not None and self.port is not None
        wait_until_serving(self._process, self.port, lambda: probe_s3(self.endpoint), self.startup_timeout, 0.1, self._fail)

    def _fail(self, reason: str) -> NoReturn:
        log = tail(self.log_path) if self.log_path else ""
        raise RuntimeError(f"versitygw {self.version} {reason}; server log tail:\n{log}")
