"""Upload files for the tests: CSV text, real XLSX workbooks and a zip bomb."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from typing import Any

import openpyxl

from tests.gateway.bundles import energy_rows

SHEET = "xl/worksheets/sheet1.xml"


def energy_table(n: int, seed: int = 0) -> list[list[Any]]:
    data = energy_rows(n, seed)
    header = ["country", "year", "renewables_share_energy", "fossil_share_energy", "carbon_intensity_elec"]
    rows: list[list[Any]] = [header]
    for i in range(n):
        rows.append([
            f"Country {i % 40}", 1990 + i % 30, round(float(data["renewables_share_energy"][i]), 3),
            round(float(data["fossil_share_energy"][i]), 3), round(float(data["carbon_intensity_elec"][i]), 3),
        ])
    return rows


def csv_bytes(rows: Sequence[Sequence[Any]], delimiter: str = ",") -> bytes:
    return "".join(delimiter.join("" if v is None else str(v) for v in row) + "\n" for row in rows).encode()


def xlsx_bytes(rows: Sequence[Sequence[Any]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def replace_member(xlsx: bytes, name: str, content: bytes) -> bytes:
    """The same workbook with one archive member's content swapped."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            data = content if member.filename == name else source.read(member)
            target.writestr(member.filename, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return out.getvalue()


def zip_bomb_xlsx(inflated_bytes: int = 64 * 1024 * 1024) -> bytes:
    """A valid workbook whose sheet XML is megabytes of zeros, deflated ~1000 times.

    Zeros are not XML: if the gateway parsed the sheet before checking the
    archive it would fail with a parse error, not the zip-bomb refusal.
    """
    return replace_member(xlsx_bytes([["country"]]), SHEET, b"0" * inflated_bytes)


def billion_laughs_xlsx() -> bytes:
    """A workbook whose sheet declares nested entities (the billion laughs attack)."""
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{"&lol;" * 10 if i == 1 else f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    sheet = (
        f'<?xml version="1.0"?><!DOCTYPE worksheet [{entities}]>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        '<row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData></worksheet>'
    ).encode()
    return replace_member(xlsx_bytes([["country"]]), SHEET, sheet)
