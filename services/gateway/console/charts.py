"""Chart data in the shape console.js draws with uPlot (see templates/macros.html)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def _finite(value: float | None) -> float | None:
    # JSON has no NaN or infinity: such a value is a gap in the line.
    return value if value is None or math.isfinite(value) else None


def line_chart(
    x: Sequence[float],
    series: Mapping[str, Sequence[float | None]],
    *,
    time_axis: bool = True,
    markers: Sequence[tuple[float, str]] = (),
) -> dict[str, object]:
    """{"x": [...], "series": [{"label", "values"}], "time": bool, "markers": [...]} for the line_chart macro.

    x is unix seconds when time_axis (uPlot's convention), otherwise plain numbers;
    None in a series is a gap in its line. ``markers`` are (x, label) pairs drawn
    as labelled vertical lines (a model swap, say).
    """
    for label, values in series.items():
        if len(values) != len(x):
            raise ValueError(f"series {label!r} has {len(values)} values for {len(x)} x positions")
    return {
        "x": list(x),
        "series": [{"label": label, "values": [_finite(v) for v in values]} for label, values in series.items()],
        "time": time_axis,
        "markers": [{"x": at, "label": label} for at, label in markers],
    }
