"""Replay a CSV file into a stream, row by row.

Only the stream's declared fields are kept (an Our World in Data export has
dozens of other columns); numbers are parsed, empty cells are left out, and
anything else goes as text: validating is the normalizer's job, so a bad row
still travels and comes back as a dead letter with its reason.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from shared.streams import FieldType, StreamSpec


def parse_row(row: Mapping[str, str | None], spec: StreamSpec) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for field in spec.fields:
        text = row.get(field.name)
        if text is None or not text.strip():
            continue
        text = text.strip()
        record[field.name] = _number(text, field.type) if field.numeric else text
    return record


def _number(text: str, kind: FieldType) -> int | float | str:
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value):
        return text  # JSON cannot carry NaN or infinity; the text keeps the reason visible
    if kind is FieldType.INT and value.is_integer():
        return int(value)
    return value


class ReplaySource:
    """A finite source: the file's rows, then nothing."""

    def __init__(self, path: Path, spec: StreamSpec) -> None:
        self.spec = spec
        self.drift = 0.0  # a recording is replayed as it is
        self.path = path
        self._handle = path.open(newline="", encoding="utf-8-sig")
        self._rows: Iterator[dict[str, str | None]] = csv.DictReader(self._handle)
        self.rows_read = 0

    def next_batch(self, n: int) -> list[dict[str, Any]]:
        if self._handle.closed:
            return []
        batch = []
        for row in self._rows:
            batch.append(parse_row(row, self.spec))
            if len(batch) == n:
                break
        self.rows_read += len(batch)
        if len(batch) < n:
            self.close()
        return batch

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()
