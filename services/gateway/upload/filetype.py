"""Which reader a file needs, from its name and its first bytes."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path


class FileType(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


class UnsupportedFile(ValueError):
    pass


_ZIP_MAGIC = b"PK\x03\x04"
_CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
_XLSX_SUFFIXES = {".xlsx", ".xlsm"}
# Formats people send by mistake, named so the answer can say what it got.
_KNOWN_BINARY = {
    b"\xd0\xcf\x11\xe0": "a legacy .xls (OLE2) workbook: save it as .xlsx or .csv",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\x1f\x8b": "a gzip archive",
}


def detect(filename: str, head: bytes) -> FileType:
    """The file's type; raises :class:`UnsupportedFile` saying why not."""
    suffix = Path(filename).suffix.lower()
    for magic, what in _KNOWN_BINARY.items():
        if head.startswith(magic):
            raise UnsupportedFile(f"{filename!r} is {what}; send a .csv or .xlsx file")
    is_zip = head.startswith(_ZIP_MAGIC)
    if suffix in _XLSX_SUFFIXES:
        if not is_zip:
            raise UnsupportedFile(f"{filename!r} is named .xlsx but is not an XLSX workbook (not a zip archive)")
        return FileType.XLSX
    if suffix in _CSV_SUFFIXES or not suffix:
        if is_zip:
            if suffix:
                raise UnsupportedFile(f"{filename!r} is a zip archive, not CSV text")
            return FileType.XLSX
        if b"\x00" in head:
            raise UnsupportedFile(f"{filename!r} is binary, not CSV text")
        return FileType.CSV
    raise UnsupportedFile(f"unsupported file type {suffix!r} ({filename!r}): send a .csv or .xlsx file")
