"""Per-sensor pressure features over hourly buckets and a 30-day window.

For a reading of sensor *s* at time *t* (hour *h*):

- ``media_hora``: mean of *s*'s readings in hour *h*, this one included;
- ``media_30d`` / ``std_30d``: mean and population standard deviation of *s*'s
  readings in the 720 hours ending at the newest hour seen for *s*;
- ``dif_media = media_hora - media_30d``;
- ``media_hora_relativa = media_hora / (media_30d + 1)``.

State is bounded: each sensor keeps a fixed ring of 720 hourly buckets (sum,
sum of squares, count), and at most ``max_sensors`` sensors are kept, the
least recently seen evicted first. Readings are applied in the order given
(Kafka keeps each sensor's order, as the sensor id is the message key). A
late reading still inside the window joins its own hour; one older than the
window is its own hourly mean and is scored against the current window
without entering it.
"""

from __future__ import annotations

import math
from array import array
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

HOURS_30D = 30 * 24

MEDIA_HORA = "media_hora"
MEDIA_30D = "media_30d"
STD_30D = "std_30d"
DIF_MEDIA = "dif_media"
MEDIA_HORA_RELATIVA = "media_hora_relativa"
ENGINEERED = (MEDIA_HORA, MEDIA_30D, STD_30D, DIF_MEDIA, MEDIA_HORA_RELATIVA)


class _SensorWindow:
    """One sensor's ring of hourly buckets.

    Sums are kept relative to the sensor's first reading (``ref``) so the
    variance from sum-of-squares does not lose precision to cancellation.
    """

    __slots__ = ("hours", "newest", "ref", "sums", "sumsqs", "counts", "total", "total_sq", "total_n", "since_exact")

    def __init__(self, hour: int, ref: float, hours: int) -> None:
        self.hours = hours
        self.newest = hour
        self.ref = ref
        self.sums = array("d", bytes(8 * hours))
        self.sumsqs = array("d", bytes(8 * hours))
        self.counts = array("d", bytes(8 * hours))
        self.total = 0.0
        self.total_sq = 0.0
        self.total_n = 0.0
        self.since_exact = 0

    def advance(self, hour: int) -> None:
        gap = hour - self.newest
        if gap >= self.hours:
            self.sums = array("d", bytes(8 * self.hours))
            self.sumsqs = array("d", bytes(8 * self.hours))
            self.counts = array("d", bytes(8 * self.hours))
            self.total = self.total_sq = self.total_n = 0.0
            self.since_exact = 0
        else:
            sums, sumsqs, counts = self.sums, self.sumsqs, self.counts
            for expired in range(self.newest + 1, hour + 1):
                slot = expired % self.hours
                if counts[slot]:
                    self.total -= sums[slot]
                    self.total_sq -= sumsqs[slot]
                    self.total_n -= counts[slot]
                    sums[slot] = sumsqs[slot] = counts[slot] = 0.0
            self.since_exact += gap
            if self.since_exact >= self.hours:
                # Subtracting expired buckets accumulates rounding; once per
                # ring turn, recompute the totals exactly.
                self.total = math.fsum(sums)
                self.total_sq = math.fsum(sumsqs)
                self.total_n = math.fsum(counts)
                self.since_exact = 0
        self.newest = hour


class PressureWindows:
    """Rolling hourly and 30-day statistics per sensor, bounded in memory."""

    def __init__(self, max_sensors: int, hours: int = HOURS_30D) -> None:
        if max_sensors < 1:
            raise ValueError("max_sensors must be at least 1")
        self.max_sensors = max_sensors
        self.hours = hours
        self.evictions = 0
        self._sensors: OrderedDict[str, _SensorWindow] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sensors)

    def __contains__(self, sensor_id: object) -> bool:
        return sensor_id in self._sensors

    def update(self, sensor_ids: Sequence[str], hours: Sequence[int], values: Sequence[float]) -> np.ndarray:
        """Apply readings in order; returns (n, 3): media_hora, media_30d, std_30d per reading."""
        n = len(sensor_ids)
        out = np.empty((n, 3), dtype=np.float64)
        sensors = self._sensors
        window_hours = self.hours
        sqrt = math.sqrt
        for i in range(n):
            sensor_id = sensor_ids[i]
            hour = int(hours[i])
            value = float(values[i])
            window = sensors.get(sensor_id)
            if window is None:
                window = self._admit(sensor_id, hour, value)
            else:
                sensors.move_to_end(sensor_id)
                if hour > window.newest:
                    window.advance(hour)
            ref = window.ref
            if window.newest - hour < window_hours:
                x = value - ref
                slot = hour % window_hours
                window.sums[slot] += x
                window.sumsqs[slot] += x * x
                window.counts[slot] += 1.0
                window.total += x
                window.total_sq += x * x
                window.total_n += 1.0
                media_hora = window.sums[slot] / window.counts[slot] + ref
            else:
                media_hora = value
            count = window.total_n
            mean = window.total / count
            var = window.total_sq / count - mean * mean
            out[i, 0] = media_hora
            out[i, 1] = mean + ref
            out[i, 2] = sqrt(var) if var > 0.0 else 0.0
        return out

    def _admit(self, sensor_id: str, hour: int, value: float) -> _SensorWindow:
        if len(self._sensors) >= self.max_sensors:
            self._sensors.popitem(last=False)
            self.evictions += 1
        window = _SensorWindow(hour, value, self.hours)
        self._sensors[sensor_id] = window
        return window


def derived(stats: np.ndarray) -> dict[str, np.ndarray]:
    """All engineered columns from ``PressureWindows.update``'s output."""
    media_hora = stats[:, 0]
    media_30d = stats[:, 1]
    return {
        MEDIA_HORA: media_hora,
        MEDIA_30D: media_30d,
        STD_30D: stats[:, 2],
        DIF_MEDIA: media_hora - media_30d,
        MEDIA_HORA_RELATIVA: media_hora / (media_30d + 1.0),
    }


def hour_index(timestamps: Sequence[object]) -> np.ndarray:
    """Whole hours since the epoch, for aware datetimes."""
    seconds = np.fromiter(
        (t.timestamp() for t in timestamps),  # type: ignore[attr-defined]
        dtype=np.float64,
        count=len(timestamps),
    )
    return np.floor_divide(seconds, 3600.0).astype(np.int64)
