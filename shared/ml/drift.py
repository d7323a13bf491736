"""Feature drift: how far the inputs a model now sees are from those it was
trained on, as a population stability index (PSI) per input.

At training time each numeric input is cut into ten bins at the deciles of
the training rows (the bins are fixed then, stored in the bundle with the
share of training rows in each); a category input's bins are its one-hot
values and ``other``. While serving, :class:`DriftMonitor` keeps the bin of
each input of the last ``window`` scored rows and gives

    PSI = sum over bins of (live share - training share) * ln(live share / training share)

(shares floored at 1e-4). Below 0.1 is usually read as stable, above 0.25 as
a shift worth acting on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from shared.ml.inputs import InputColumn

BINS = 10
FLOOR = 1e-4


class FeatureReference(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["number", "category"]
    edges: list[float] = []  # numbers: inner bin edges, rising
    expected: list[float]  # share of training rows per bin


def reference(inputs: Sequence[InputColumn], X_train: np.ndarray) -> dict[str, FeatureReference]:
    """Bins and training shares of every input (columns of ``X_train`` in ``inputs`` order)."""
    out: dict[str, FeatureReference] = {}
    at = 0
    for column in inputs:
        block = X_train[:, at : at + column.width]
        at += column.width
        if column.kind == "number":
            values = block[:, 0]
            edges = np.unique(np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1]))
            counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
            out[column.name] = FeatureReference(kind="number", edges=edges.tolist(),
                                                expected=(counts / max(len(values), 1)).tolist())
        else:
            shares = block.sum(axis=0) / max(len(block), 1)
            out[column.name] = FeatureReference(kind="category", expected=shares.tolist())
    return out


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.maximum(np.asarray(expected, dtype=np.float64), FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


class DriftMonitor:
    """The PSI of each input over the last ``window`` rows a model scored."""

    def __init__(self, inputs: Sequence[InputColumn], references: dict[str, FeatureReference], window: int = 1000) -> None:
        self.window = window
        self._columns: list[tuple[str, int, int, FeatureReference]] = []
        at = 0
        for column in inputs:
            ref = references.get(column.name)
            if ref is not None:
                self._columns.append((column.name, at, column.width, ref))
            at += column.width
        self._bins = {name: deque(maxlen=window) for name, *_ in self._columns}
        self._counts = {name: np.zeros(len(ref.expected), dtype=np.int64) for name, _, _, ref in self._columns}

    @property
    def seen(self) -> int:
        return max((len(bins) for bins in self._bins.values()), default=0)

    def update(self, matrix: np.ndarray) -> None:
        """Add the rows of a complete input matrix (the model's own columns)."""
        for name, at, width, ref in self._columns:
            block = matrix[:, at : at + width]
            if ref.kind == "number":
                bins = np.searchsorted(np.asarray(ref.edges), block[:, 0], side="right")
            else:
                bins = block.argmax(axis=1)
            window, counts = self._bins[name], self._counts[name]
            for b in bins.tolist():
                if len(window) == window.maxlen:
                    counts[window[0]] -= 1
                window.append(b)
                counts[b] += 1

    def values(self) -> dict[str, float]:
        """The PSI of each input over the rows in the window."""
        out = {}
        for name, _, _, ref in self._columns:
            total = self._counts[name].sum()
            if total:
                out[name] = psi(np.asarray(ref.expected), self._counts[name] / total)
        return out
