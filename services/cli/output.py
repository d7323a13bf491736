"""How results are printed: rich tables for people, JSON with --json for scripts."""

from __future__ import annotations

from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(value: Any, *, lines: bool = False) -> None:
    """Exactly JSON on stdout (plain print, not rich); ``lines``: one compact object per line."""
    print(orjson.dumps(value, option=0 if lines else orjson.OPT_INDENT_2).decode(), flush=True)


def number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "-" if value is None else str(value)


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    view = Table(title=title, show_lines=False)
    for column in columns:
        view.add_column(column)
    for row in rows:
        view.add_row(*(number(v) for v in row))
    out.print(view)


def metrics_text(metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return "-"
    return ", ".join(f"{name}={number(value)}" for name, value in sorted(metrics.items()))
