"""Receive a multipart upload straight into a temporary file.

The body is parsed as it arrives, so the size limit is enforced while reading:
the file part is hashed and written chunk by chunk and the upload is refused
the moment it grows past the limit, before it is ever held in memory whole.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import IO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

FILE_FIELD = "file"
_MAX_FIELD_BYTES = 1024
_MAX_FIELDS = 16
_MAX_FILENAME = 255


class UploadTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than the limit of {limit} bytes")
        self.limit = limit


class BadForm(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass
class ReceivedFile:
    path: Path
    filename: str
    content_type: str | None
    size: int
    sha256: str


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    file: ReceivedFile | None = None


def boundary_of(content_type: str | None) -> bytes:
    if not content_type:
        raise BadForm("body", "expected multipart/form-data with a file part and a stream field")
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        raise BadForm("body", f"expected multipart/form-data, got {kind.decode(errors='replace')[:60]!r}")
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadForm("body", "multipart/form-data without a boundary")
    return boundary


def clean_filename(raw: bytes) -> str:
    # Browsers on Windows may send the whole path; only the last part matters.
    name = PureWindowsPath(raw.decode("utf-8", errors="replace")).name
    return name.replace("\x00", "")[:_MAX_FILENAME] or "upload"


class _Receiver:
    """python-multipart callbacks writing the one file part to disk."""

    def __init__(self, directory: Path | None, max_file_bytes: int) -> None:
        self.directory = directory
        self.max_file_bytes = max_file_bytes
        self.form = ReceivedForm()
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._text = bytearray()
        self._handle: IO[bytes] | None = None
        self._hash = hashlib.sha256()
        self._size = 0
        self._in_file = False
        self.paths: list[Path] = []

    def on_part_begin(self) -> None:
        self._headers = {}
        self._text = bytearray()
        self._in_file = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        if name is None:
            raise BadForm("body", "a multipart part without a name")
        self._name = name.decode("utf-8", errors="replace")
        if b"filename" not in options:
            if len(self.form.fields) >= _MAX_FIELDS:
                raise BadForm("body", f"more than {_MAX_FIELDS} form fields")
            return
        if self._name != FILE_FIELD:
            raise BadForm(self._name[:40], f"unexpected file part: send the file as the {FILE_FIELD!r} field")
        if self.form.file is not None or self._handle is not None:
            raise BadForm(FILE_FIELD, "send one file per upload")
        descriptor, path = tempfile.mkstemp(prefix="fluxo-upload-", dir=self.directory)
        self.paths.append(Path(path))
        self._handle = os.fdopen(descriptor, "wb")
        self._in_file = True
        content_type = self._headers.get(b"content-type")
        self.form.file = ReceivedFile(
            path=Path(path),
            filename=clean_filename(options[b"filename"]),
            content_type=content_type.decode("latin-1")[:100] if content_type else None,
            size=0,
            sha256="",
        )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            assert self._handle is not None
            self._size += end - start
            if self._size > self.max_file_bytes:
                raise UploadTooLarge(self.max_file_bytes)
            chunk = data[start:end]
            self._hash.update(chunk)
            self._handle.write(chunk)
            return
        if len(self._text) + end - start > _MAX_FIELD_BYTES:
            raise BadForm(self._name[:40], f"form field longer than {_MAX_FIELD_BYTES} bytes")
        self._text += data[start:end]

    def on_part_end(self) -> None:
        if self._in_file:
            self.close_file()
            assert self.form.file is not None
            self.form.file.size = self._size
            self.form.file.sha256 = self._hash.hexdigest()
            self._in_file = False
        else:
            self.form.fields[self._name] = self._text.decode("utf-8", errors="replace")

    def close_file(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def remove_files(self) -> None:
        self.close_file()
        for path in self.paths:
            path.unlink(missing_ok=True)


async def receive_form(
    content_type: str | None,
    body: AsyncIterator[bytes],
    *,
    max_file_bytes: int,
    directory: Path | None = None,
) -> ReceivedForm:
    """Parse a multipart body; the caller deletes ``form.file.path`` when done.

    Raises :class:`UploadTooLarge` past ``max_file_bytes`` of file content and
    :class:`BadForm` for a body that is not a well-formed form.
    """
    receiver = _Receiver(directory, max_file_bytes)
    parser = MultipartParser(
        boundary_of(content_type),
        {
            "on_part_begin": receiver.on_part_begin,
            "on_part_data": receiver.on_part_data,
            "on_part_end": receiver.on_part_end,
            "on_header_field": receiver.on_header_field,
            "on_header_value": receiver.on_header_value,
            "on_header_end": receiver.on_header_end,
            "on_headers_finished": receiver.on_headers_finished,
        },
    )
    try:
        async for chunk in body:
            parser.write(chunk)
        parser.finalize()
        if receiver._in_file:
            raise BadForm("body", "the multipart body ended inside the file part")
    except FormParserError as error:
        receiver.remove_files()
        raise BadForm("body", f"malformed multipart body ({error})") from None
    except BaseException:
        receiver.remove_files()
        raise
    receiver.close_file()
    return receiver.form
