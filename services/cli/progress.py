"""A file reader that moves a progress bar as httpx streams the file out."""

from __future__ import annotations

from typing import IO

from rich.progress import Progress


class ProgressReader:
    """Wraps a binary file; httpx reads it chunk by chunk while encoding the form."""

    def __init__(self, handle: IO[bytes], progress: Progress | None, task_id: int | None) -> None:
        self._handle = handle
        self._progress = progress
        self._task_id = task_id

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        if self._progress is not None and self._task_id is not None:
            self._progress.advance(self._task_id, len(chunk))  # type: ignore[arg-type]
        return chunk

    # httpx asks the file for its size (to send a Content-Length) and may rewind it.
    def fileno(self) -> int:
        return self._handle.fileno()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()
