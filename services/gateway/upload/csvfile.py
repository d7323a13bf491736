"""Read a CSV upload: a first pass checks its structure, a second yields rows.

The first pass (C-speed csv parsing, no conversion) proves the whole file is
UTF-8, well-formed and has the stream's columns before a single row is
published, so a malformed file is refused whole rather than half-published.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.csvtext import choose_delimiter, open_csv
from shared.streams import StreamSpec



class BadCsv(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class TooManyRows(ValueError):
    pass


@dataclass(frozen=True)
class CsvLayout:
    delimiter: str
    width: int  # cells in the header
    columns: dict[str, int]  # stream field -> cell index
    ignored: list[str]  # header cells that are no field of the stream
    rows: int  # data rows, blank lines not counted


@dataclass(frozen=True)
class Row:
    number: int  # line in the file; the header is 1
    record: dict[str, Any] | None
    problem: str | None = None  # set when the row could not become a record


def map_columns(stream: StreamSpec, header: list[str]) -> tuple[dict[str, int], list[str]]:
    """Header cells to stream fields (case and surrounding blanks ignored)."""
    by_name = {spec.name.lower(): spec.name for spec in stream.fields}
    columns: dict[str, int] = {}
    ignored: list[str] = []
    for index, cell in enumerate(header):
        name = by_name.get(cell.strip().lower())
        if name is None:
            if cell.strip():
                ignored.append(cell.strip()[:80])
            continue
        if name in columns:
            raise BadCsv("columns", f"column {name!r} appears twice in the header")
        columns[name] = index
    missing = [spec.name for spec in stream.fields if spec.required and spec.name not in columns]
    if missing:
        needed = ", ".join(spec.name for spec in stream.fields if spec.required)
        raise BadCsv(
            "columns",
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(stream {stream.name!r} needs {needed})",
        )
    return columns, ignored


def inspect_csv(path: Path, stream: StreamSpec, max_rows: int) -> CsvLayout:
    """Check the whole file's structure; raises BadCsv or TooManyRows."""
    try:
        with open_csv(path) as handle:
            first = handle.readline(64 * 1024)
            delimiter = choose_delimiter(first)
            handle.seek(0)
            reader = csv.reader(handle, delimiter=delimiter, strict=True)
            header = next(reader, None)
            if header is None or not any(cell.strip() for cell in header):
                raise BadCsv("file", "empty file: expected a header row naming the columns")
            columns, ignored = map_columns(stream, header)
            rows = 0
            for cells in reader:
                if cells:
                    rows += 1
                    if rows > max_rows:
                        raise TooManyRows(f"the file has more than {max_rows} data rows")
    except UnicodeDecodeError as error:
        raise BadCsv("file", f"not UTF-8 text (invalid byte at position {error.start} of a block)") from None
    except csv.Error as error:
        raise BadCsv("file", f"malformed CSV at line {reader.line_num}: {error}") from None
    return CsvLayout(delimiter=delimiter, width=len(header), columns=columns, ignored=ignored, rows=rows)


def iter_rows(path: Path, layout: CsvLayout) -> Iterator[Row]:
    """Every non-blank data row as a record of the stream's fields (empty cells absent)."""
    with open_csv(path) as handle:
        reader = csv.reader(handle, delimiter=layout.delimiter, strict=True)
        next(reader, None)
        for cells in reader:
            if not cells:
                continue
            number = reader.line_num
            if len(cells) > layout.width:
                yield Row(number, None, f"{len(cells)} cells, the header has {layout.width}")
                continue
            record: dict[str, Any] = {}
            for name, index in layout.columns.items():
                if index < len(cells):
                    value = cells[index].strip()
                    if value:
                        record[name] = value
            yield Row(number, record)


def chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
