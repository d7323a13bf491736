"""How Fluxo reads a CSV file: UTF-8 (a byte-order mark allowed), the delimiter
chosen from the header line among ``,`` ``;`` tab and ``|``. Uploads and
declaration inference read files the same way through these two functions."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

DELIMITERS = (",", ";", "\t", "|")


def open_csv(path: Path) -> TextIO:
    return path.open("r", encoding="utf-8-sig", errors="strict", newline="")


def choose_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","
