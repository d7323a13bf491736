"""The trainer's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TRAINING_DURATION = Histogram(
    "fluxo_training_duration_seconds",
    "Wall time of one training run: data, fit, export, check, comparison and bundle.",
    ["stream", "task", "algorithm"],
    buckets=(0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320),
)
TRAINING_RUNS = Counter(
    "fluxo_training_runs_total", "Training runs finished, by outcome.", ["stream", "task", "status"]
)
MODEL_METRIC = Gauge(
    "fluxo_model_metric", "Held-out metrics of the newest trained model.", ["stream", "task", "metric"]
)
ACTIVE_VERSION = Gauge(
    "fluxo_trainer_active_model_version", "Version of the active model, as the trainer last set it.", ["stream", "task"]
)
WINDOW_ROWS = Gauge("fluxo_trainer_window_events", "Features events in the training window.", ["stream"])
