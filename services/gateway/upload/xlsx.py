"""Read an XLSX upload safely, into a CSV file the rest of the upload path reads.

Before any XML is parsed the archive's directory is inspected: too many
members, a total uncompressed size or a compression ratio beyond the limits
(a zip bomb) refuse the file. zipfile never inflates a member past the size
its directory declares, so those declared sizes bound the work. The sheet is
then read with openpyxl in read-only mode (streamed, not loaded whole) and
openpyxl parses through defusedxml, which refuses entity expansion and
external references.
"""

from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any

import openpyxl

_MAX_MEMBERS = 10_000


class UnsafeXlsx(ValueError):
    pass


class UnreadableXlsx(ValueError):
    pass


@dataclass(frozen=True)
class XlsxLimits:
    max_uncompressed_bytes: int
    max_ratio: float


def check_archive(path: Path, limits: XlsxLimits) -> None:
    """Refuse archives that would inflate absurdly; raises UnsafeXlsx or UnreadableXlsx."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise UnreadableXlsx(f"not a readable XLSX workbook ({error})") from None
    if len(members) > _MAX_MEMBERS:
        raise UnsafeXlsx(f"the archive holds {len(members)} members (at most {_MAX_MEMBERS})")
    total = sum(member.file_size for member in members)
    if total > limits.max_uncompressed_bytes:
        raise UnsafeXlsx(
            f"the workbook would inflate to {total} bytes (at most {limits.max_uncompressed_bytes}); "
            "refused as a possible zip bomb"
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        # Tiny members compress oddly without being dangerous.
        if member.file_size > 1024 * 1024 and ratio > limits.max_ratio:
            raise UnsafeXlsx(
                f"member {member.filename[:80]!r} is compressed {ratio:.0f} times (at most {limits.max_ratio:g}); "
                "refused as a possible zip bomb"
            )
    if "xl/workbook.xml" not in {member.filename for member in members}:
        raise UnreadableXlsx("not an XLSX workbook (no xl/workbook.xml in the archive)")


def _root_cause(error: BaseException) -> str:
    """The innermost error, e.g. defusedxml's EntitiesForbidden under openpyxl's
    generic ValueError (whose message also names a server-side path)."""
    while (inner := error.__cause__ or error.__context__) is not None:
        error = inner
    return f"{type(error).__name__}: {str(error)[:200]}"


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    # A line break inside a cell would shift every later row number.
    return str(value).replace("\r", " ").replace("\n", " ")


def xlsx_to_csv(path: Path, target: Path, max_rows: int) -> int:
    """Write the first worksheet as CSV (one line per sheet row, so row numbers
    match the sheet's); returns the number of rows written."""
    if not openpyxl.DEFUSEDXML:
        raise UnsafeXlsx("XLSX reading is disabled: defusedxml is not active for openpyxl")
    with path.open("rb") as source:
        return _convert(source, target, max_rows)


def _convert(source: IO[bytes], target: Path, max_rows: int) -> int:
    try:
        # A file object, not a path: openpyxl would judge a path by its suffix,
        # and the upload's temporary file has none.
        workbook = openpyxl.load_workbook(source, read_only=True, data_only=True, keep_links=False)
    except Exception as error:  # noqa: BLE001 - any parser failure means the file is unreadable
        raise UnreadableXlsx(f"cannot read the workbook ({_root_cause(error)})") from None
    rows = 0
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            raise UnreadableXlsx("the workbook has no worksheet")
        with target.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            for values in sheet.iter_rows(values_only=True):
                rows += 1
                if rows > max_rows + 1:
                    break  # the CSV reader reports the row limit
                cells = [_cell_text(value) for value in values]
                while cells and cells[-1] == "":
                    cells.pop()
                writer.writerow(cells)
    except UnreadableXlsx:
        raise
    except Exception as error:  # noqa: BLE001
        raise UnreadableXlsx(f"cannot read the worksheet ({_root_cause(error)})") from None
    finally:
        workbook.close()
    return rows
