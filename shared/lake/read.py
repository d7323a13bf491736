"""Exported features files back into training rows.

A training source is an export id (the features files that export
committed for the stream), or a lake address: ``s3://bucket/prefix`` or a
local directory, either a lake's root (its ``features/stream=<name>/`` is
read) or a directory or file of features Parquet. Files are read newest
first (by their date directory, then name) until ``max_rows`` rows, and each
row becomes the dict a features event decodes to, so training treats it
exactly like the stream's window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq
from pyarrow.fs import FileType

from shared.lake.addresses import LakeSourceError
from shared.lake.destination import Destination, ObjectStoreSettings, open_destination
from shared.lake.layout import FEATURES, TEMPORARY_ROOT, kind_dir

_GROUPS = ("features", "categories", "targets", "context")


@dataclass(frozen=True)
class LakeFiles:
    destination: Destination
    paths: list[str]  # full paths in the destination's filesystem


def _visible(path: str) -> bool:
    parts = path.split("/")
    return path.endswith(".parquet") and TEMPORARY_ROOT not in parts and not parts[-1].startswith((".", "_"))


def address_files(address: str, stream: str, store: ObjectStoreSettings | None = None) -> LakeFiles:
    """The features files of ``stream`` at a lake address."""
    destination = open_destination(address, store)
    info = destination.filesystem.get_file_info(destination.root)
    if info.type == FileType.File:
        return LakeFiles(destination, [destination.root])
    below = kind_dir(FEATURES, stream) if destination.exists(kind_dir(FEATURES, stream)) else ""
    paths = [file.path for file in destination.files(below) if _visible(file.path)]
    if not paths:
        raise LakeSourceError(f"no Parquet files of stream {stream!r} at {destination.url(below) if below else address}")
    return LakeFiles(destination, paths)


def _event(row: dict[str, Any]) -> dict[str, Any]:
    for group in _GROUPS:
        values = row.get(group)
        row[group] = {name: value for name, value in values.items() if value is not None} if values else {}
    return row


def read_rows(files: LakeFiles, max_rows: int, timeout: float) -> tuple[list[dict[str, Any]], int]:
    """(rows as features-event dicts, newest first up to ``max_rows``; files read)."""
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    read = 0
    for path in sorted(files.paths, reverse=True):
        if len(rows) >= max_rows:
            break
        if time.monotonic() > deadline:
            raise LakeSourceError(f"reading the lake took over {timeout:g} s ({read} files, {len(rows)} rows)")
        table = pq.read_table(path, filesystem=files.destination.filesystem)
        missing = [name for name in ("event_id", "features") if name not in table.column_names]
        if missing:
            raise LakeSourceError(f"{path} is not a features file (no {', '.join(missing)} column)")
        rows.extend(_event(row) for row in table.slice(0, max_rows - len(rows)).to_pylist())
        read += 1
    return rows, read
