"""Held-out metrics and the not-worse rule."""

from __future__ import annotations

import math

import numpy as np

from shared.ml import evaluate
from shared.streams import TaskKind


def test_not_worse() -> None:
    assert evaluate.not_worse(0.80, None, 0.01)
    assert evaluate.not_worse(0.80, math.nan, 0.01)
    assert evaluate.not_worse(0.80, 0.80, 0.0)
    assert evaluate.not_worse(0.795, 0.80, 0.01)
    assert not evaluate.not_worse(0.70, 0.80, 0.01)
    assert not evaluate.not_worse(math.nan, 0.80, 0.01)


def test_gate_scores() -> None:
    y = np.array([0, 1, 1, 0, 1.0])
    none = np.zeros((5, 1))
    assert evaluate.gate_score(TaskKind.CLASSIFICATION, "f1", none, y, y) == 1.0
    assert evaluate.gate_score(TaskKind.CLASSIFICATION, "f1", none, y, np.zeros(5)) == 0.0
    # The positive class decides binary F1; macro F1 averages both classes.
    assert evaluate.gate_score(TaskKind.CLASSIFICATION, "f1", none, y, np.zeros(5), positive=0) > 0.0
    assert 0.0 < evaluate.gate_score(TaskKind.CLASSIFICATION, "macro_f1", none, y, np.zeros(5)) < 0.5
    values = np.array([1.0, 2.0, 3.0, 4.0])
    assert evaluate.gate_score(TaskKind.REGRESSION, "r2", np.zeros((4, 1)), values, values) == 1.0
    # Every gate metric is higher-is-better: errors count negatively.
    assert evaluate.gate_score(TaskKind.REGRESSION, "neg_mae", np.zeros((4, 1)), values, values + 2) == -2.0
    blobs = np.array([[0.0], [0.1], [10.0], [10.1]])
    good = evaluate.gate_score(TaskKind.CLUSTERING, "silhouette", blobs, None, np.array([0, 0, 1, 1]))
    bad = evaluate.gate_score(TaskKind.CLUSTERING, "silhouette", blobs, None, np.array([0, 1, 0, 1]))
    assert good > 0.9 > bad
    assert evaluate.gate_score(TaskKind.CLUSTERING, "silhouette", blobs, None, np.zeros(4)) == -1.0


def test_multiclass_metrics_and_confusion() -> None:
    y = np.array([0, 1, 2, 2, 1, 0])
    predicted = np.array([0, 2, 2, 2, 1, 0])
    metrics = evaluate.classification_metrics(y, predicted, n_classes=3, positive=None)
    assert metrics["accuracy"] == 5 / 6
    assert metrics["f1"] == metrics["macro_f1"] and "precision" not in metrics
    assert evaluate.confusion(y, predicted, 3) == [[2, 0, 0], [0, 1, 1], [0, 0, 2]]


def test_silhouette_does_not_depend_on_units() -> None:
    # Both models are judged in the same standardised space, whatever their scalers.
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (50, 2)), rng.normal(5, 1, (50, 2))])
    labels = np.repeat([0, 1], 50)
    assert math.isclose(evaluate.silhouette(X, labels), evaluate.silhouette(X * [1000.0, 0.01], labels), rel_tol=1e-9)


def test_metrics_are_finite_for_json() -> None:
    metrics = evaluate.regression_metrics(np.array([1.0]), np.array([1.0]))
    assert "r2" not in metrics and metrics["mae"] == 0.0
