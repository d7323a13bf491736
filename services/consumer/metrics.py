"""The consumer's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PREDICTIONS = Counter(
    "fluxo_predictions_total", "Prediction rows written, by status (unscored: no model yet; failed: the model raised).",
    ["stream", "task", "status"]
)
SCORING_FAILURES = Counter(
    "fluxo_scoring_failures_total", "Batches a task's model raised on while scoring (its rows are 'failed').",
    ["stream", "task"],
)
SCORING_LATENCY = Histogram(
    "fluxo_scoring_latency_seconds",
    "Time to score one batch of one task with ONNX Runtime.",
    ["stream", "task"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
ROLLING_ERROR = Gauge(
    "fluxo_prediction_rolling_error",
    "Prediction against actual over the last predictions with a known target: "
    "mean absolute error (regression) or accuracy (classification).",
    ["stream", "task", "model_version", "metric"],
)
LABELS = Counter(
    "fluxo_labels_total", "Labels that arrived after their event, by outcome (joined, pending, rejected, expired).",
    ["stream", "outcome"],
)
ALERTS = Counter("fluxo_alerts_total", "Alerts raised, per stream and area (e.g. neighbourhood).", ["stream", "area"])

# Area names come from the data (an upload can bring thousands), so the
# label takes the first few seen and folds the rest into "other".
MAX_AREA_LABELS = 50
_areas: set[str] = set()


def count_alert(stream: str, area: str | None) -> None:
    name = area or "unknown"
    if name not in _areas:
        if len(_areas) >= MAX_AREA_LABELS:
            name = "other"
        else:
            _areas.add(name)
    ALERTS.labels(stream, name).inc()

HISTORY_PARTITIONS_DROPPED = Counter(
    "fluxo_history_partitions_dropped_total", "Month partitions of the entity history dropped by retention."
)
