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
EVENTS_REPLAYED = Counter(
    "fluxo_normalizer_replayed_total",
    "Raw events committed before a restart or rebalance, replayed into the restored state (nothing produced).",
    ["stream"],
)
KEYS_RESTORED = Counter(
    "fluxo_normalizer_restored_keys_total", "Rolling-window keys restored from the windows changelog.", ["stream"]
)
REPLAY_SKIPPED = Counter(
    "fluxo_normalizer_replay_skipped_total",
    "Partitions whose replay was longer than NORMALIZER_REPLAY_MAX_RECORDS or ran past its deadline: "
    "their windows resumed from the checkpoint without the records in between.",
    ["stream"],
)
WINDOW_SNAPSHOTS = Counter(
    "fluxo_normalizer_window_snapshots_total", "Key window states (and evictions) written to the windows changelog.",
    ["stream"],
)
