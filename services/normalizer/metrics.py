"""The normalizer's own metrics (the loop's counters live in shared.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SENSORS_TRACKED = Gauge("fluxo_normalizer_sensors", "Pressure sensors whose windows are held in memory.")
SENSOR_EVICTIONS = Counter(
    "fluxo_normalizer_sensor_evictions_total", "Sensor windows dropped to keep state bounded."
)
SCALER_VERSION = Gauge("fluxo_normalizer_scaler_version", "Current online scaler version.", ["stream"])
SCALER_SNAPSHOTS = Counter(
    "fluxo_normalizer_scaler_snapshots_total", "Scaler snapshots published.", ["stream"]
)
EVENTS_REJECTED = Counter(
    "fluxo_normalizer_rejected_total", "Raw events rejected, by stream and kind of fault.", ["stream", "kind"]
)
