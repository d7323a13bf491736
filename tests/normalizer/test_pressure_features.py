"""Per-sensor hourly and 30-day pressure features on hand-computed series."""

from __future__ import annotations

import math
import statistics

import numpy as np
import orjson
import pytest

from services.normalizer.handler import Normalizer
from shared.features.rolling import RollingWindows
from shared.streams.catalog import Catalog
from shared.streams.declaration import Statistic
from tests.streams import PRESSURE
from tests.normalizer.records import TOPICS, batch, pressure

H = 500_000  # an arbitrary hour index
HOURS_30D = 30 * 24


def PressureWindows(max_sensors: int) -> RollingWindows:  # noqa: N802 - reads like the declaration it mirrors
    """The pressure declaration's rolling statistics: hour mean, 30-day mean and deviation."""
    return RollingWindows(max_sensors, HOURS_30D, [(1, Statistic.MEAN), (HOURS_30D, Statistic.MEAN),
                                                  (HOURS_30D, Statistic.STD)])


def test_hourly_and_window_statistics_by_hand() -> None:
    windows = PressureWindows(max_sensors=10)
    stats = windows.update(
        ["a", "a", "b", "a", "a"],
        [H, H, H, H + 1, H + 2],
        [10.0, 20.0, 99.0, 30.0, 60.0],
    )
    # a@H: 10 -> hour mean 10, window {10}
    # a@H: 20 -> hour mean 15, window {10, 20}
    # b@H: 99 -> its own sensor
    # a@H+1: 30 -> hour mean 30, window {10, 20, 30}
    # a@H+2: 60 -> hour mean 60, window {10, 20, 30, 60}
    expected = [
        (10.0, 10.0, 0.0),
        (15.0, 15.0, 5.0),
        (99.0, 99.0, 0.0),
        (30.0, 20.0, statistics.pstdev([10, 20, 30])),
        (60.0, 30.0, statistics.pstdev([10, 20, 30, 60])),
    ]
    np.testing.assert_allclose(stats, expected, atol=1e-12)


def test_old_hours_leave_the_30_day_window() -> None:
    windows = PressureWindows(max_sensors=1)
    windows.update(["a", "a"], [H, H + 1], [100.0, 10.0])
    # 720 hours after H, hour H has left the window; H+1 is still in it.
    [[hour_mean, mean_30d, std_30d]] = windows.update(["a"], [H + HOURS_30D], [20.0]).tolist()
    assert (hour_mean, mean_30d, std_30d) == pytest.approx((20.0, 15.0, 5.0))
    # A jump of more than 30 days forgets everything.
    [[hour_mean, mean_30d, std_30d]] = windows.update(["a"], [H + 5 * HOURS_30D], [7.0]).tolist()
    assert (hour_mean, mean_30d, std_30d) == pytest.approx((7.0, 7.0, 0.0))


def test_late_readings_join_their_hour_inside_the_window_only() -> None:
    windows = PressureWindows(max_sensors=1)
    windows.update(["a", "a"], [H, H + 10], [10.0, 30.0])
    [[late_hour, late_mean, _]] = windows.update(["a"], [H], [20.0]).tolist()
    assert (late_hour, late_mean) == pytest.approx((15.0, 20.0))
    [[too_old, mean, _]] = windows.update(["a"], [H + 10 - HOURS_30D - 5], [1000.0]).tolist()
    assert (too_old, mean) == pytest.approx((1000.0, 20.0))  # not added to the window


def test_sensors_are_bounded_least_recently_seen_first() -> None:
    windows = PressureWindows(max_sensors=3)
    windows.update(["a", "b", "c"], [H] * 3, [1.0, 2.0, 3.0])
    windows.update(["a"], [H], [1.0])  # a is now the most recent
    windows.update(["d"], [H], [4.0])  # evicts b
    assert len(windows) == 3 and windows.evictions == 1
    assert "b" not in windows and all(s in windows for s in "acd")
    windows.update([f"s{i}" for i in range(100)], [H] * 100, [5.0] * 100)
    assert len(windows) == 3 and windows.evictions == 101
    # An evicted sensor starts afresh.
    [[_, mean, _]] = windows.update(["a"], [H], [50.0]).tolist()
    assert mean == 50.0


def test_window_matches_numpy_on_a_long_random_series() -> None:
    rng = np.random.default_rng(3)
    hours = np.cumsum(rng.integers(0, 3, 5000)) + H  # several readings per hour, gaps too
    values = rng.normal(50, 5, 5000)
    windows = PressureWindows(max_sensors=1)
    stats = windows.update(["a"] * 5000, hours.tolist(), values.tolist())
    for i in (10, 999, 2500, 4999):
        in_hour = values[: i + 1][hours[: i + 1] == hours[i]]
        in_window = values[: i + 1][hours[: i + 1] > hours[i] - HOURS_30D]
        assert stats[i].tolist() == pytest.approx([in_hour.mean(), in_window.mean(), in_window.std()], rel=1e-9)


def test_handler_emits_the_engineered_features_in_order() -> None:
    normalizer = Normalizer(TOPICS, Catalog([PRESSURE]))
    datas = [
        pressure(timestamp="2026-01-01T10:05:00Z", pressure_mca=40.0),
        pressure(timestamp="2026-01-01T10:35:00Z", pressure_mca=44.0),
        pressure(timestamp="2026-01-01T11:05:00Z", pressure_mca=60.0),
    ]
    events = [orjson.loads(o.value) for o in normalizer.handle(batch("pressure", datas)).outputs]
    last = events[-1]["features"]
    assert set(PRESSURE.scaled_features) <= set(last)
    assert last["pressure_mca"] == 60.0
    assert last["media_hora"] == 60.0
    assert last["media_30d"] == pytest.approx(48.0)
    assert last["std_30d"] == pytest.approx(statistics.pstdev([40, 44, 60]))
    assert last["dif_media"] == pytest.approx(12.0)
    assert last["media_hora_relativa"] == pytest.approx(60.0 / 49.0)
    assert events[1]["features"]["media_hora"] == 42.0
    assert all(math.isfinite(v) for e in events for v in e["scaled"].values())


def test_state_is_only_fed_valid_readings() -> None:
    normalizer = Normalizer(TOPICS, Catalog([PRESSURE]))
    normalizer.handle(batch("pressure", [pressure(pressure_mca=40.0), pressure(pressure_mca=500.0)]))
    [event] = [orjson.loads(o.value) for o in normalizer.handle(batch("pressure", [pressure(pressure_mca=60.0)])).outputs]
    assert event["features"]["media_30d"] == 50.0
