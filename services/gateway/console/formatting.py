"""How the console writes numbers, rates, ages and times (Jinja filters)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

DASH = "—"


def number(value: Any) -> str:
    """Four significant digits with thousands separators; booleans and text as they are."""
    if value is None or value == "":
        return DASH
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.4g}"


def cell(value: Any) -> str:
    """A record's value in a table: numbers as number() writes them, ISO 8601 times without seconds' fractions."""
    if isinstance(value, str) and len(value) >= 16 and value[4:5] == "-" and value[10:11] == "T":
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return when(moment) if moment.tzinfo is not None else moment.strftime("%Y-%m-%d %H:%M:%S")
    return number(value)


def rate(value: float | None) -> str:
    return DASH if value is None else f"{value:,.1f}/s"


def age(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    seconds = max(seconds, 0)
    for limit, unit, size in ((120, "s", 1), (7200, "min", 60), (172800, "h", 3600)):
        if seconds < limit:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds / 86400:.0f} d"


def clock(moment: datetime | None) -> str:
    """HH:MM:SS in UTC."""
    if moment is None:
        return DASH
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%H:%M:%S")


def when(moment: datetime | None) -> str:
    """YYYY-MM-DD HH:MM:SS UTC."""
    if moment is None:
        return DASH
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def unix_when(seconds: float | None) -> str:
    return DASH if seconds is None else when(datetime.fromtimestamp(seconds, UTC))


FILTERS = {"number": number, "cell": cell, "rate": rate, "age": age, "clock": clock, "when": when, "unix_when": unix_when}
