"""A stream's numeric columns for a batch of validated records.

Numeric and boolean fields are taken as they are (float64, NaN where an
optional field is absent); then the declared computed columns follow in
dependency order (shared.streams.order): time parts of a datetime field,
derived fields (shared.expressions) and per-key rolling statistics
(shared.features.rolling). The normalizer computes every column this way;
the gateway computes the same columns for a prediction request, with the
rolling statistics given by the caller (they need a key's history, which
only the normalizer has), so there is one implementation of each column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from shared.expressions import parse
from shared.features.rolling import RollingWindows, bucket_index
from shared.streams.declaration import FieldType, RollingSpec, StreamSpec, TimePart, TimePartsSpec
from shared.streams.order import Step, compute_order
from shared.validation import BatchValidation


@dataclass
class RollingGroup:
    """Rolling statistics sharing their key, time, value and bucket: one window state."""

    key: str
    time: str
    value: str
    bucket: int
    specs: list[RollingSpec]
    windows: RollingWindows | None = None

    @property
    def name(self) -> str:
        """Stable across restarts and declaration versions that keep the group."""
        return f"{self.key}|{self.time}|{self.value}|{self.bucket}"


# (group, the reading's key, its row in the batch) -> does the reading enter the window?
Admits = Callable[[RollingGroup, str, int], bool]


def _group_key(spec: StreamSpec, rolling: RollingSpec) -> tuple[str, str, str, int]:
    return (rolling.key or spec.key or "", rolling.time or spec.time_field or "", rolling.value, rolling.bucket)


class StreamColumns:
    def __init__(self, spec: StreamSpec, *, max_keys: int = 2000, rolling_given: bool = False) -> None:
        """``rolling_given``: rolling statistics are inputs the caller passes
        to :meth:`compute` instead of state kept here."""
        self.spec = spec
        self.rolling_given = rolling_given
        expressions = {derived.name: parse(derived.expression) for derived in spec.derived}
        self.steps: list[Step] = compute_order(spec, expressions)
        self.groups: dict[tuple[str, str, str, int], RollingGroup] = {}
        for rolling in spec.rolling:
            key = _group_key(spec, rolling)
            group = self.groups.get(key)
            if group is None:
                group = self.groups[key] = RollingGroup(*key, specs=[])
            group.specs.append(rolling)
        if not rolling_given:
            for group in self.groups.values():
                widths = [rolling.window // rolling.bucket for rolling in group.specs]
                group.windows = RollingWindows(
                    max_keys, max(widths), [(w, r.stat) for w, r in zip(widths, group.specs, strict=True)]
                )
        self.numeric_fields = tuple(
            f.name for f in spec.fields if f.numeric or f.type is FieldType.BOOL
        )
        self.key_fields = tuple(
            f.name for f in spec.fields if f.type in (FieldType.CATEGORY, FieldType.STR, FieldType.BOOL)
        )

    @property
    def names(self) -> tuple[str, ...]:
        return self.numeric_fields + tuple(step.name for step in self.steps)

    def compute(
        self,
        batch: BatchValidation,
        rows: np.ndarray,
        given: Mapping[str, np.ndarray] | None = None,
        admits: Admits | None = None,
        partitions: list[int] | None = None,
    ) -> dict[str, np.ndarray]:
        """Every numeric column for ``rows`` (indices of valid records, in order).

        ``admits``: when given, a reading it refuses leaves its key's window
        as it is (a replay over readings a restored window already holds);
        its rolling statistics are then NaN. ``partitions``: the raw partition
        of every batch row, remembered per key (the normalizer's restore)."""
        row_list = rows.tolist()
        out: dict[str, np.ndarray] = {}
        absent = [None] * (max(row_list) + 1 if row_list else 0)
        columns = batch.columns
        for name in self.numeric_fields:
            if name in columns:
                out[name] = _as_numbers(columns[name], rows, row_list)
            else:  # a request that does not carry this field
                out[name] = np.full(len(row_list), np.nan)
        keys = {name: [columns.get(name, absent)[i] for i in row_list] for name in self.key_fields}
        done_groups: set[tuple[str, str, str, int]] = set()
        for step in self.steps:
            if step.time_parts is not None:
                times = columns.get(step.time_parts.field, absent)
                out[step.name] = _time_part(step.time_parts, step.name, [times[i] for i in row_list])
            elif step.expression is not None:
                out[step.name] = step.expression.evaluate(
                    {**out, **keys}, self.spec.constants, self.spec.tables, len(row_list)
                )
            elif step.rolling is not None:
                if self.rolling_given:
                    value = None if given is None else given.get(step.name)
                    out[step.name] = np.full(len(row_list), np.nan) if value is None else np.asarray(value, dtype=np.float64)
                    continue
                group_key = _group_key(self.spec, step.rolling)
                if group_key in done_groups:
                    continue
                done_groups.add(group_key)
                out.update(self._rolling(self.groups[group_key], batch, row_list, out, admits, partitions))
        return out

    def _rolling(
        self, group: RollingGroup, batch: BatchValidation, row_list: list[int], out: dict[str, np.ndarray],
        admits: Admits | None = None,
        partitions: list[int] | None = None,
    ) -> dict[str, np.ndarray]:
        assert group.windows is not None
        n = len(row_list)
        key_column = batch.columns[group.key]
        time_column = batch.columns[group.time]
        values = out[group.value]
        keys = [key_column[i] for i in row_list]
        times = [time_column[i] for i in row_list]
        usable = [
            j for j in range(n)
            if keys[j] is not None and isinstance(times[j], datetime) and np.isfinite(values[j])
        ]
        if admits is not None:
            usable = [j for j in usable if admits(group, str(keys[j]), row_list[j])]
        result = np.full((n, len(group.specs)), np.nan)
        if usable:
            buckets = bucket_index([times[j] for j in usable], group.bucket)
            tags = None if partitions is None else [partitions[row_list[j]] for j in usable]
            stats = group.windows.update(
                [str(keys[j]) for j in usable], buckets.tolist(), values[usable].tolist(), tags
            )
            result[usable] = stats
        return {spec.name: result[:, j] for j, spec in enumerate(group.specs)}

    def rolling_state(self) -> tuple[int, int]:
        """(keys held, keys evicted so far) over every rolling group."""
        held = sum(len(g.windows) for g in self.groups.values() if g.windows is not None)
        evicted = sum(g.windows.evictions for g in self.groups.values() if g.windows is not None)
        return held, evicted


def _as_numbers(column: Any, rows: np.ndarray, row_list: list[int]) -> np.ndarray:
    if isinstance(column, np.ndarray):
        return np.asarray(column, dtype=np.float64)[rows]
    # booleans (and None for absent) as 1.0 / 0.0 / NaN
    return np.array([np.nan if column[i] is None else float(column[i]) for i in row_list], dtype=np.float64)


def _time_part(parts: TimePartsSpec, name: str, times: list[Any]) -> np.ndarray:
    part = TimePart(name[len(parts.field) + 1:])
    n = len(times)
    present = np.array([isinstance(t, datetime) for t in times], dtype=bool)
    out = np.full(n, np.nan)
    if not present.any():
        return out
    if parts.timezone == "UTC":
        seconds = np.array([t.timestamp() if isinstance(t, datetime) else 0.0 for t in times], dtype=np.float64)
        stamps = seconds.astype("datetime64[s]")
        days = stamps.astype("datetime64[D]").astype(np.int64)
        values = {
            TimePart.HOUR: (np.floor_divide(seconds, 3600.0) % 24),
            TimePart.DAY_OF_WEEK: ((days + 3) % 7).astype(np.float64),  # 1970-01-01 was a Thursday; Monday is 0
            TimePart.MONTH: (stamps.astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(np.float64),
        }
        values[TimePart.WEEKEND] = (values[TimePart.DAY_OF_WEEK] >= 5).astype(np.float64)
        out[present] = values[part][present]
        return out
    zone = ZoneInfo(parts.timezone)
    for i, t in enumerate(times):
        if isinstance(t, datetime):
            local = t.astimezone(zone)
            out[i] = {
                TimePart.HOUR: local.hour,
                TimePart.DAY_OF_WEEK: local.weekday(),
                TimePart.MONTH: local.month,
                TimePart.WEEKEND: float(local.weekday() >= 5),
            }[part]
    return out
