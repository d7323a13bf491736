"""Chart data in the shape console.js draws with uPlot (see templates/macros.html)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def line_chart(
    x: Sequence[float], series: Mapping[str, Sequence[float | None]], *, time_axis: bool = True
) -> dict[str, object]:
    """{"x": [...], "series": [{"label", "values"}], "time": bool} for the line_chart macro.

    x is unix seconds when time_axis (uPlot's convention), otherwise plain numbers;
    None in a series is a gap in its line.
    """
    for label, values in series.items():
        if len(values) != len(x):
            raise ValueError(f"series {label!r} has {len(values)} values for {len(x)} x positions")
    return {
        "x": list(x),
        "series": [{"label": label, "values": list(values)} for label, values in series.items()],
        "time": time_axis,
    }


def sample_chart(points: int = 48, start: float = 1_767_225_600.0) -> dict[str, object]:
    """A fixed day-shaped curve, hourly-ish, for the placeholder overview page."""
    step = 1800.0
    x = [start + i * step for i in range(points)]
    load = [round(50 + 30 * math.sin(i / points * 2 * math.pi - math.pi / 2) + 4 * math.sin(i), 2) for i in range(points)]
    baseline = [50.0] * points
    return line_chart(x, {"sample load": load, "baseline": baseline})
