"""Where the lake's files go: a local directory or an S3-compatible bucket.

``s3://bucket/prefix`` goes through pyarrow's S3 filesystem with the
endpoint and credentials of the environment (S3_ENDPOINT_URL for a server
that is not AWS, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION), with
a connect and a request timeout and a bounded number of attempts on every
call. Anything else is a local directory.

A file is written whole or not at all: the bytes go to a temporary name,
are checked, then committed under the final name. Locally the commit is a
rename (atomic; the file and the directory are fsynced first). S3 has no
rename: the commit is a server-side copy (CopyObject, which makes the final
object appear whole or not at all) and the temporary object is deleted. A
process killed mid-write leaves only a temporary file, under ``_tmp/``, which
readers skip (pyarrow and Hive-style readers ignore names starting with _ or
.) and the next attempt deletes.
"""

from __future__ import annotations

import os
import posixpath
import time
from dataclasses import dataclass

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from pyarrow import Buffer
from pyarrow.fs import AwsStandardS3RetryStrategy, FileInfo, FileSelector, FileSystem, FileType, LocalFileSystem

from shared.infra.s3 import DEFAULT_REGION, S3Endpoint
from shared.lake.addresses import DestinationError, parse_destination

__all__ = ["Destination", "DestinationError", "ObjectStoreSettings", "open_destination", "parse_destination"]


class ObjectStoreSettings(BaseSettings):
    """The S3-compatible store's address and credentials, from the environment."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_prefix="")

    s3_endpoint_url: str | None = Field(
        None, description="An S3-compatible server's URL (http://host:port); unset: AWS S3 itself."
    )
    aws_access_key_id: str | None = Field(None, description="Access key of the S3 store (unset: AWS's default chain).")
    aws_secret_access_key: SecretStr | None = Field(None, description="Secret key of the S3 store.")
    aws_region: str = Field(DEFAULT_REGION, description="Region the S3 store signs requests for.")
    s3_connect_timeout: float = Field(5.0, gt=0, description="Seconds to connect to the S3 store.")
    s3_request_timeout: float = Field(60.0, gt=0, description="Seconds one S3 request may take.")
    s3_max_attempts: int = Field(3, ge=1, le=10, description="Attempts of one S3 request before it fails.")


def s3_filesystem(store: ObjectStoreSettings) -> FileSystem:
    retry = AwsStandardS3RetryStrategy(max_attempts=store.s3_max_attempts)
    options: dict[str, object] = {
        "connect_timeout": store.s3_connect_timeout,
        "request_timeout": store.s3_request_timeout,
        "retry_strategy": retry,
    }
    secret = store.aws_secret_access_key.get_secret_value() if store.aws_secret_access_key else None
    if store.s3_endpoint_url:
        if not store.aws_access_key_id or not secret:
            raise DestinationError("S3_ENDPOINT_URL is set but not AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        return S3Endpoint(store.s3_endpoint_url, store.aws_access_key_id, secret, store.aws_region).filesystem(**options)
    from pyarrow.fs import S3FileSystem

    credentials = {"access_key": store.aws_access_key_id, "secret_key": secret} if store.aws_access_key_id else {}
    return S3FileSystem(region=store.aws_region, **credentials, **options)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Destination:
    """A lake root: ``name`` is how the manifest knows it."""

    name: str
    filesystem: FileSystem
    root: str

    @property
    def local(self) -> bool:
        return isinstance(self.filesystem, LocalFileSystem)

    def path(self, relative: str) -> str:
        return posixpath.join(self.root, relative)

    def url(self, relative: str) -> str:
        """The full address of a file, as a reader would open it."""
        return f"{self.name}/{relative}"

    def write_whole(self, data: Buffer, temporary: str, final: str, pause: float = 0.0) -> None:
        """Write ``data`` under ``temporary``, check it, then commit it as
        ``final`` (both relative to the root); ``pause`` seconds between the
        two (tests kill an export there)."""
        if self.local:
            self._write_local(data, self.path(temporary), self.path(final), pause)
            return
        fs, temporary_path = self.filesystem, self.path(temporary)
        with fs.open_output_stream(temporary_path) as out:
            out.write(data)
        written = fs.get_file_info(temporary_path).size
        if written != data.size:
            raise OSError(f"{self.url(temporary)} holds {written} bytes, {data.size} were written")
        if pause:
            time.sleep(pause)
        fs.copy_file(temporary_path, self.path(final))
        fs.delete_file(temporary_path)

    @staticmethod
    def _write_local(data: Buffer, temporary: str, final: str, pause: float) -> None:
        os.makedirs(os.path.dirname(temporary), exist_ok=True)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        with open(temporary, "wb") as out:
            out.write(memoryview(data))
            out.flush()
            os.fsync(out.fileno())
        if pause:
            time.sleep(pause)
        os.replace(temporary, final)
        directory = os.open(os.path.dirname(final), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def files(self, relative: str) -> list[FileInfo]:
        """Every file below ``relative`` (none when it does not exist), by path."""
        selector = FileSelector(self.path(relative), allow_not_found=True, recursive=True)
        found = [info for info in self.filesystem.get_file_info(selector) if info.type == FileType.File]
        return sorted(found, key=lambda info: info.path)

    def discard(self, relative: str) -> int:
        """Delete ``relative`` and every file below it (a half-written
        temporary one from a killed attempt); returns how many files there were."""
        found = self.files(relative)
        for info in found:
            self.filesystem.delete_file(info.path)
        # pyarrow keeps an emptied S3 "directory" as a marker object: it goes too.
        if self.exists(relative):
            self.filesystem.delete_dir(self.path(relative))
        return len(found)

    def exists(self, relative: str) -> bool:
        return self.filesystem.get_file_info(self.path(relative)).type != FileType.NotFound


def open_destination(url: str, store: ObjectStoreSettings | None = None) -> Destination:
    """The destination ``url`` names (see :func:`parse_destination`)."""
    name, bucket, root = parse_destination(url)
    if bucket is None:
        return Destination(name, LocalFileSystem(), root)
    return Destination(name, s3_filesystem(store or ObjectStoreSettings()), root)
