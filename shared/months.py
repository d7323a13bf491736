"""Calendar arithmetic on UTC instants: hours, months, whole months back."""

from __future__ import annotations

from calendar import monthrange
from datetime import UTC, datetime


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour holding ``moment``."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_of(moment: datetime) -> datetime:
    """The start of the UTC day holding ``moment``."""
    return hour_of(moment).replace(hour=0)


def month_start(moment: datetime) -> datetime:
    return day_of(moment).replace(day=1)


def next_month(moment: datetime) -> datetime:
    start = month_start(moment)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


def months_before(moment: datetime, months: int) -> datetime:
    """``moment`` minus whole calendar months (the day clamped to the month's
    last, as PostgreSQL's ``- interval 'N months'`` does)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    return moment.replace(year=year, month=month + 1, day=min(moment.day, monthrange(year, month + 1)[1]))
