"""Lake addresses, checked without touching storage (and without pyarrow, so
the gateway can check them cheaply): a destination is ``s3://bucket/prefix``
or a local directory; a training source is also an export's id."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

S3_SCHEME = "s3://"
# S3 bucket names: 3 to 63 of [a-z0-9.-], a letter or digit at each end.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
EXPORT_ID = re.compile(r"^[0-9a-f]{32}$")


class DestinationError(ValueError):
    """A destination that cannot be used as given."""


class LakeSourceError(ValueError):
    """A training source that cannot be read, with the reason."""


def parse_destination(url: str) -> tuple[str, str | None, str]:
    """(canonical name, bucket or None for a local directory, root path in
    the filesystem). Raises DestinationError."""
    url = url.strip()
    if not url:
        raise DestinationError("empty destination: give a directory or s3://bucket/prefix")
    if url.startswith(S3_SCHEME):
        bucket, _, prefix = url[len(S3_SCHEME):].partition("/")
        prefix = prefix.strip("/")
        if not _BUCKET.match(bucket):
            raise DestinationError(f"{url!r}: {bucket!r} is not an S3 bucket name")
        if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
            raise DestinationError(f"{url!r}: the prefix has an empty, '.' or '..' part")
        root = f"{bucket}/{prefix}" if prefix else bucket
        return f"{S3_SCHEME}{root}", bucket, root
    if "://" in url and not url.startswith("file://"):
        raise DestinationError(f"{url!r}: only s3:// URLs and local directories are destinations")
    path = Path(url.removeprefix("file://")).expanduser().resolve()
    return str(path), None, path.as_posix()


def is_export_id(source: str) -> bool:
    return bool(EXPORT_ID.match(source))


def check_address(source: str) -> str:
    """The canonical address of a training source that is not an export id;
    raises LakeSourceError."""
    if not source.startswith((S3_SCHEME, "file://")) and not posixpath.isabs(source):
        raise LakeSourceError(f"{source[:80]!r} is not an export id, an s3:// URL or an absolute path")
    try:
        return parse_destination(source)[0]
    except DestinationError as error:
        raise LakeSourceError(str(error)) from None
