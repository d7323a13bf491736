"""The normalizer's own metrics (the loop's counters live in shared.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

ROLLING_KEYS = Gauge(
    "fluxo_normalizer_rolling_keys", "Keys (sensors, households...) whose rolling windows are held in memory."
)
ROLLING_EVICTIONS = Counter(
    "fluxo_normalizer_rolling_evictions_total", "Rolling windows of a key dropped to keep state bounded."
)
SCALER_VERSION = Gauge("fluxo_normalizer_scaler_version", "Current online scaler version.", ["stream"])
SCALER_SNAPSHOTS = Counter(
    "fluxo_normalizer_scaler_snapshots_total", "Scaler snapshots published.", ["stream"]
)
EVENTS_REJECTED = Counter(
    "fluxo_normalizer_rejected_total", "Raw events rejected, by stream and kind of fault.", ["stream", "kind"]
)
EVENTS_REDELIVERED = Counter(
    "fluxo_normalizer_redelivered_total",
    "Raw events delivered again (a rewound or isolated batch) and answered as the first time.", ["stream"],
)
