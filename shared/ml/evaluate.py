"""Held-out metrics and the one number two models are compared on.

Every gate metric is "higher is better":
- regression: R² (``r2``), or minus the MAE / RMSE (``neg_mae``, ``neg_rmse``);
- classification: F1 of the positive class for a binary task, which accuracy
  would hide under class imbalance (``f1``; for several classes ``f1`` is the
  macro F1), ``macro_f1`` or ``accuracy``;
- clustering: silhouette. Inertia is reported too but depends on the number
  of clusters and on each model's own scaler, so it cannot rank two models.
  The silhouette of both models' labels is computed in one common space
  (the held-out rows standardised by their own mean and deviation), so a
  candidate and the active model are judged on the same geometry.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    precision_score,
    r2_score,
    recall_score,
    root_mean_squared_error,
    silhouette_score,
)

from shared.streams import TaskKind

# Silhouette is quadratic in rows; a bounded sample keeps it to milliseconds.
SILHOUETTE_SAMPLE = 2000


def finite(metrics: dict[str, float]) -> dict[str, float]:
    """Metrics that JSON and the registry can hold (NaN and infinities dropped)."""
    return {name: float(value) for name, value in metrics.items() if math.isfinite(value)}


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    mae = mean_absolute_error(y_true, y_pred)
    rmse = root_mean_squared_error(y_true, y_pred)
    return finite(
        {
            "r2": r2_score(y_true, y_pred) if len(y_true) > 1 else math.nan,
            "mae": mae,
            "rmse": rmse,
            "neg_mae": -mae,
            "neg_rmse": -rmse,
        }
    )


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 2, positive: int | None = 1
) -> dict[str, float]:
    """Accuracy and macro F1 always; for a binary task also precision, recall
    and F1 of the positive class (``f1`` is the macro F1 otherwise)."""
    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    labels = list(range(n_classes))
    macro = f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    metrics = {"accuracy": accuracy_score(y_true, y_pred), "macro_f1": macro, "f1": macro}
    if n_classes == 2 and positive is not None:
        metrics["precision"] = precision_score(y_true, y_pred, pos_label=positive, zero_division=0)
        metrics["recall"] = recall_score(y_true, y_pred, pos_label=positive, zero_division=0)
        metrics["f1"] = f1_score(y_true, y_pred, pos_label=positive, zero_division=0)
    return finite(metrics)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> list[list[int]]:
    """Rows: true class, columns: predicted class, both in class-index order."""
    matrix = confusion_matrix(np.asarray(y_true).astype(int), np.asarray(y_pred).astype(int), labels=list(range(n_classes)))
    return matrix.tolist()


def common_space(X: np.ndarray) -> np.ndarray:
    """Rows standardised by their own statistics: a space no model owns."""
    X = np.asarray(X, dtype=np.float64)
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)


def silhouette(X: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """Silhouette in the common space; -1 (the worst) when it is undefined
    (a single cluster, or as many clusters as rows)."""
    labels = np.asarray(labels).astype(int)
    n_labels = len(np.unique(labels))
    if n_labels < 2 or n_labels >= len(labels):
        return -1.0
    sample = min(len(labels), SILHOUETTE_SAMPLE)
    return float(silhouette_score(common_space(X), labels, sample_size=sample, random_state=seed))


def gate_score(
    kind: TaskKind,
    metric: str,
    X: np.ndarray,
    y_true: np.ndarray | None,
    prediction: np.ndarray,
    *,
    n_classes: int = 2,
    positive: int | None = 1,
) -> float:
    """``metric`` (a gate metric of ``kind``) of ``prediction`` on held-out rows
    ``X`` (and ``y_true``); NaN when it is undefined."""
    if kind is TaskKind.CLUSTERING:
        return silhouette(X, prediction)
    assert y_true is not None, "supervised tasks are scored against their targets"
    if kind is TaskKind.CLASSIFICATION:
        return float(classification_metrics(y_true, prediction, n_classes, positive).get(metric, math.nan))
    if len(y_true) < 2:
        return math.nan
    return float(regression_metrics(np.asarray(y_true, dtype=np.float64), prediction).get(metric, math.nan))


def not_worse(candidate: float, active: float | None, tolerance: float) -> bool:
    """Whether the candidate may replace the active model.

    An active score that is missing or NaN (no active model, or one that
    cannot be scored) never holds the candidate back.
    """
    if active is None or math.isnan(active):
        return True
    if math.isnan(candidate):
        return False
    return candidate >= active - tolerance
