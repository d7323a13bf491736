"""Per-key rolling statistics over time buckets, bounded in memory.

Every key (a sensor, a household) keeps a ring of ``ring`` buckets (the
longest declared window, in buckets), each holding the sum, sum of squares
and count of its readings (and min and max when asked for). For a reading of
key *k* in bucket *b*:

- a window of one bucket summarises *b* itself, this reading included (the
  mean of a sensor's readings in this hour);
- a longer window of *w* buckets summarises the *w* buckets ending at the
  newest bucket seen for *k* (a 30-day mean and deviation: 720 hourly
  buckets), kept as running totals so a reading costs O(1) per window.

Readings are applied in the order given (Kafka keeps each key's order, as
the key is the message key). A late reading still inside the ring joins its
own bucket (and the windows that contain it); one older than the ring is its
own one-bucket summary and is scored against the current windows without
entering them. At most ``max_keys`` keys are kept, the least recently seen
evicted first.

A key's state can be exported and installed again exactly (the normalizer
checkpoints the keys touched since its last checkpoint, see
services/normalizer/checkpoint.py): running totals included, so statistics
after a restore are the very floats they would have been without it.

Sums are kept relative to the key's first reading (``ref``) so the variance
from sums of squares does not lose precision to cancellation, and once per
turn of the ring the running totals are recomputed exactly.
"""

from __future__ import annotations

import math
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from shared.streams.declaration import Statistic

_INF = float("inf")


class _KeyWindow:
    __slots__ = ("newest", "ref", "sums", "sumsqs", "counts", "mins", "maxs", "totals", "since_exact", "tag")

    def __init__(self, bucket: int, ref: float, ring: int, widths: tuple[int, ...], extremes: bool) -> None:
        self.newest = bucket
        self.ref = ref
        self.sums = array("d", bytes(8 * ring))
        self.sumsqs = array("d", bytes(8 * ring))
        self.counts = array("d", bytes(8 * ring))
        self.mins = array("d", [_INF]) * ring if extremes else None
        self.maxs = array("d", [-_INF]) * ring if extremes else None
        # window width (buckets, > 1) -> [sum, sum of squares, count] over the
        # ``width`` buckets ending at ``newest``
        self.totals = {width: [0.0, 0.0, 0.0] for width in widths}
        self.since_exact = 0
        # The caller's tag of the newest reading (the normalizer: its raw partition).
        self.tag = -1

    def clear(self, ring: int) -> None:
        self.sums = array("d", bytes(8 * ring))
        self.sumsqs = array("d", bytes(8 * ring))
        self.counts = array("d", bytes(8 * ring))
        if self.mins is not None:
            self.mins = array("d", [_INF]) * ring
            self.maxs = array("d", [-_INF]) * ring
        for total in self.totals.values():
            total[0] = total[1] = total[2] = 0.0
        self.since_exact = 0

    def advance(self, bucket: int, ring: int) -> None:
        gap = bucket - self.newest
        if gap >= ring:
            self.clear(ring)
            self.newest = bucket
            return
        sums, sumsqs, counts = self.sums, self.sumsqs, self.counts
        # Buckets leaving each window, read before their slots are reused.
        for width, total in self.totals.items():
            for leaving in range(self.newest - width + 1, bucket - width + 1):
                slot = leaving % ring
                if counts[slot]:
                    total[0] -= sums[slot]
                    total[1] -= sumsqs[slot]
                    total[2] -= counts[slot]
        for reused in range(self.newest + 1, bucket + 1):
            slot = reused % ring
            sums[slot] = sumsqs[slot] = counts[slot] = 0.0
            if self.mins is not None:
                self.mins[slot] = _INF
                self.maxs[slot] = -_INF
        self.newest = bucket
        self.since_exact += gap
        if self.since_exact >= ring:
            # Subtracting leaving buckets accumulates rounding; once per ring
            # turn, recompute the totals exactly.
            for width, total in self.totals.items():
                slots = [(self.newest - k) % ring for k in range(width)]
                total[0] = math.fsum(sums[s] for s in slots)
                total[1] = math.fsum(sumsqs[s] for s in slots)
                total[2] = math.fsum(counts[s] for s in slots)
            self.since_exact = 0


class RollingWindows:
    """Rolling statistics per key for one (key, time, value, bucket) group."""

    def __init__(self, max_keys: int, ring: int, requests: Sequence[tuple[int, Statistic]]) -> None:
        """``requests``: (window width in buckets, statistic) per output column."""
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        if ring < 1 or any(not 1 <= width <= ring for width, _ in requests):
            raise ValueError("every window must fit in the ring")
        self.max_keys = max_keys
        self.ring = ring
        self.requests = tuple(requests)
        self.widths = tuple(sorted({width for width, _ in requests if width > 1}))
        self.extremes = any(stat in (Statistic.MIN, Statistic.MAX) for _, stat in requests)
        self.evictions = 0
        self._keys: OrderedDict[str, _KeyWindow] = OrderedDict()
        # Keys changed / evicted since the caller last took them (take_changes).
        self._touched: set[str] = set()
        self._evicted: set[str] = set()

    @property
    def shape(self) -> str:
        """What an exported state depends on: a state of another shape cannot be installed."""
        stats = ",".join(f"{width}:{stat.value}" for width, stat in self.requests)
        return f"ring={self.ring};requests={stats}"

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def update(
        self, keys: Sequence[str], buckets: Sequence[int], values: Sequence[float], tags: Sequence[int] | None = None
    ) -> np.ndarray:
        """Apply readings in order; returns (n, len(requests)) statistics per reading.
        ``tags``: one int per reading, kept as its key's newest (:meth:`tag_of`)."""
        n = len(keys)
        out = np.empty((n, len(self.requests)), dtype=np.float64)
        windows, ring, requests = self._keys, self.ring, self.requests
        for i in range(n):
            key, bucket, value = keys[i], int(buckets[i]), float(values[i])
            self._touched.add(key)
            window = windows.get(key)
            if window is None:
                window = self._admit(key, bucket, value)
            else:
                windows.move_to_end(key)
                if bucket > window.newest:
                    window.advance(bucket, ring)
            if tags is not None:
                window.tag = tags[i]
            ref = window.ref
            inside = window.newest - bucket < ring
            slot = bucket % ring
            if inside:
                x = value - ref
                window.sums[slot] += x
                window.sumsqs[slot] += x * x
                window.counts[slot] += 1.0
                if window.mins is not None:
                    window.mins[slot] = min(window.mins[slot], value)
                    window.maxs[slot] = max(window.maxs[slot], value)
                for width, total in window.totals.items():
                    if window.newest - bucket < width:
                        total[0] += x
                        total[1] += x * x
                        total[2] += 1.0
            for j, (width, stat) in enumerate(requests):
                out[i, j] = self._statistic(window, width, stat, slot if inside else None, value)
        return out

    def _statistic(self, window: _KeyWindow, width: int, stat: Statistic, slot: int | None, value: float) -> float:
        ref = window.ref
        if width == 1:
            if slot is None:  # older than the ring: the reading is its own bucket
                return _single(stat, value)
            total, total_sq, count = window.sums[slot], window.sumsqs[slot], window.counts[slot]
            if stat is Statistic.MIN:
                return window.mins[slot]  # type: ignore[index]
            if stat is Statistic.MAX:
                return window.maxs[slot]  # type: ignore[index]
        else:
            total, total_sq, count = window.totals[width]
            if stat in (Statistic.MIN, Statistic.MAX):
                slots = [(window.newest - k) % self.ring for k in range(width)]
                if stat is Statistic.MIN:
                    return min(window.mins[s] for s in slots)  # type: ignore[index]
                return max(window.maxs[s] for s in slots)  # type: ignore[index]
        if stat is Statistic.COUNT:
            return count
        if count == 0:
            return math.nan
        if stat is Statistic.SUM:
            return total + count * ref
        mean = total / count
        if stat is Statistic.MEAN:
            return mean + ref
        var = total_sq / count - mean * mean
        return math.sqrt(var) if var > 0.0 else 0.0

    def _admit(self, key: str, bucket: int, value: float) -> _KeyWindow:
        window = _KeyWindow(bucket, value, self.ring, self.widths, self.extremes)
        self._hold(key, window)
        return window

    def _hold(self, key: str, window: _KeyWindow) -> None:
        if key not in self._keys and len(self._keys) >= self.max_keys:
            evicted, _ = self._keys.popitem(last=False)
            self.evictions += 1
            self._touched.discard(evicted)
            self._evicted.add(evicted)
        self._evicted.discard(key)
        self._keys[key] = window
        self._keys.move_to_end(key)

    def drop_tagged(self, tags: set[int]) -> int:
        """Forget the keys whose newest reading has one of ``tags`` (the
        normalizer: partitions another member took over, whose windows are
        now that member's to keep and checkpoint). Returns how many."""
        dropped = [key for key, window in self._keys.items() if window.tag in tags]
        for key in dropped:
            del self._keys[key]
            self._touched.discard(key)
            self._evicted.discard(key)
        return len(dropped)

    def take_changes(self) -> tuple[set[str], set[str]]:
        """The keys updated and the keys evicted since the last call."""
        touched, evicted = self._touched, self._evicted
        self._touched, self._evicted = set(), set()
        return touched, evicted

    def give_back(self, touched: set[str], evicted: set[str]) -> None:
        """Changes taken but not saved after all (a checkpoint that failed)."""
        self._touched |= {key for key in touched if key in self._keys}
        self._evicted |= {key for key in evicted if key not in self._keys}

    def tag_of(self, key: str) -> int:
        window = self._keys.get(key)
        return -1 if window is None else window.tag

    def export(self, key: str) -> dict[str, Any] | None:
        """A key's whole state as plain data (only its non-empty buckets)."""
        window = self._keys.get(key)
        if window is None:
            return None
        slots = np.flatnonzero(np.frombuffer(window.counts, dtype=np.float64))

        def at_slots(column: array) -> list[float]:
            return np.frombuffer(column, dtype=np.float64)[slots].tolist()

        state: dict[str, Any] = {
            "newest": window.newest,
            "ref": window.ref,
            "since_exact": window.since_exact,
            "totals": [[width, *total] for width, total in window.totals.items()],
            "slots": slots.tolist(),
            "sums": at_slots(window.sums),
            "sumsqs": at_slots(window.sumsqs),
            "counts": at_slots(window.counts),
        }
        if window.mins is not None and window.maxs is not None:
            state["mins"] = at_slots(window.mins)
            state["maxs"] = at_slots(window.maxs)
        return state

    def install(self, key: str, state: dict[str, Any], tag: int = -1) -> None:
        """Hold ``state`` (from :meth:`export` of windows of the same shape) as ``key``'s."""
        window = _KeyWindow(int(state["newest"]), float(state["ref"]), self.ring, self.widths, self.extremes)
        window.since_exact = int(state["since_exact"])
        window.tag = tag
        totals = {int(width): [float(s), float(sq), float(c)] for width, s, sq, c in state["totals"]}
        if set(totals) != set(window.totals):
            raise ValueError(f"state has windows {sorted(totals)}, these windows are {list(self.widths)}")
        window.totals = totals
        for column in ("sums", "sumsqs", "counts") + (("mins", "maxs") if window.mins is not None else ()):
            target = getattr(window, column)
            for slot, value in zip(state["slots"], state[column], strict=True):
                target[int(slot)] = float(value)
        self._hold(key, window)


def _single(stat: Statistic, value: float) -> float:
    if stat is Statistic.COUNT:
        return 1.0
    if stat is Statistic.STD:
        return 0.0
    return value


def bucket_index(timestamps: Sequence[object], bucket_seconds: int) -> np.ndarray:
    """Whole buckets since the epoch, for aware datetimes."""
    seconds = np.fromiter(
        (t.timestamp() for t in timestamps),  # type: ignore[attr-defined]
        dtype=np.float64,
        count=len(timestamps),
    )
    return np.floor_divide(seconds, float(bucket_seconds)).astype(np.int64)
