"""Rolling prediction-against-actual per stream, task and model version.

Regression keeps the absolute errors of the last ``size`` predictions with a
known actual and reports their mean (MAE); classification keeps whether
each was right and reports the share that was (accuracy).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from shared.streams import TaskKind

Key = tuple[str, str, int]  # stream, task, model version


def metric_name(kind: TaskKind) -> str:
    return "accuracy" if kind is TaskKind.CLASSIFICATION else "mae"


class RollingErrors:
    def __init__(self, size: int = 500) -> None:
        self.size = size
        self._values: dict[Key, deque[float]] = {}

    def update(self, key: Key, kind: TaskKind, errors: np.ndarray) -> float | None:
        """Add a batch's errors (NaN: no actual) and return the new value,
        or None when nothing is known yet."""
        known = errors[~np.isnan(errors)]
        window = self._values.get(key)
        if window is None:
            if not len(known):
                return None
            window = self._values[key] = deque(maxlen=self.size)
        if kind is TaskKind.CLASSIFICATION:
            window.extend((1.0 - known).tolist())  # error 0 means right
        else:
            window.extend(np.abs(known).tolist())
        return self.value(key)

    def value(self, key: Key) -> float | None:
        window = self._values.get(key)
        return float(np.mean(window)) if window else None

    def forget(self, stream: str, task: str, keep_version: int) -> list[Key]:
        """Drop the windows of other versions of a task (after a swap)."""
        gone = [k for k in self._values if k[0] == stream and k[1] == task and k[2] != keep_version]
        for key in gone:
            del self._values[key]
        return gone
