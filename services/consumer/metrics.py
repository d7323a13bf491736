"""The consumer's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PREDICTIONS = Counter(
    "fluxo_predictions_total", "Prediction rows written, by status (unscored: no model yet).", ["stream", "task", "status"]
)
SCORING_LATENCY = Histogram(
    "fluxo_scoring_latency_seconds",
    "Time to score one batch of one task with ONNX Runtime.",
    ["stream", "task"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
MODEL_SWAPS = Counter("fluxo_model_swaps_total", "Models loaded and put into service.", ["stream", "task"])
BUNDLE_REFUSALS = Counter(
    "fluxo_bundle_refusals_total", "Bundles refused (sha256 mismatch, missing or unreadable).", ["stream", "task"]
)
ROLLING_ERROR = Gauge(
    "fluxo_prediction_rolling_error",
    "Prediction against actual over the last predictions with a known target: "
    "mean absolute error (regression) or accuracy (classification).",
    ["stream", "task", "model_version", "metric"],
)
MODEL_VERSION = Gauge(
    "fluxo_consumer_model_version", "Version of the model scoring each task (0: none).", ["stream", "task"]
)
ALERTS = Counter("fluxo_alerts_total", "Anomalies raised as alerts.", ["stream", "neighbourhood"])

# Neighbourhood names come from the data (an upload can bring thousands), so
# the label takes the first few seen and folds the rest into "other".
MAX_NEIGHBOURHOOD_LABELS = 50
_neighbourhoods: set[str] = set()


def count_alert(stream: str, neighbourhood: str | None) -> None:
    name = neighbourhood or "unknown"
    if name not in _neighbourhoods:
        if len(_neighbourhoods) >= MAX_NEIGHBOURHOOD_LABELS:
            name = "other"
        else:
            _neighbourhoods.add(name)
    ALERTS.labels(stream, name).inc()
