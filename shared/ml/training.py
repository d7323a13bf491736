"""Train one task's model: a scikit-learn Pipeline(StandardScaler, estimator).

:func:`train` is pure (arrays in, fitted pipeline and held-out metrics out)
and runs in a worker thread in the trainer. Every estimator is told to use
one thread: the machine is shared with Kafka and PostgreSQL.

Inputs are rounded to float32 before fitting, because serving feeds the ONNX
graph float32: a model trained on exactly the values it will see scores the
held-out rows the same way in ONNX as in scikit-learn.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.ensemble import RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier, XGBRegressor

from shared.ml import evaluate, hyperparams
from shared.ml.hyperparams import HyperparameterError
from shared.streams import Algorithm, TaskKind, TaskSpec

# Below this many usable rows a held-out split says nothing.
MIN_ROWS = 20
MIN_TEST_ROWS = 4

__all__ = [
    "MIN_ROWS",
    "HyperparameterError",
    "NotEnoughData",
    "TrainResult",
    "TrainingError",
    "UnknownAlgorithm",
    "resolve_algorithm",
    "train",
]


class TrainingError(ValueError):
    """A training request that cannot succeed; the message says why."""


class UnknownAlgorithm(TrainingError):
    pass


class NotEnoughData(TrainingError):
    pass


@dataclass(frozen=True)
class TrainResult:
    task: TaskSpec
    algorithm: Algorithm
    pipeline: Pipeline
    hyperparameters: dict[str, Any]  # effective values, JSON-safe
    metrics: dict[str, float]  # held-out
    X_test: np.ndarray  # float64, float32-representable
    y_test: np.ndarray | None
    rows_train: int
    feature_means: dict[str, float]
    # Clustering: centres in raw units, row i is category i.
    centers: list[list[float]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> TaskKind:
        return self.task.kind


def resolve_algorithm(task: TaskSpec, algorithm: str | Algorithm | None) -> Algorithm:
    """The algorithm to train ``task`` with (its default when None)."""
    if algorithm is None or algorithm == "":
        return task.default_algorithm
    try:
        chosen = Algorithm(algorithm)
    except ValueError:
        known = ", ".join(a.value for a in Algorithm)
        raise UnknownAlgorithm(f"unknown algorithm {algorithm!r} (algorithms: {known})") from None
    if chosen not in task.algorithms:
        allowed = ", ".join(a.value for a in task.algorithms)
        raise UnknownAlgorithm(
            f"algorithm {chosen.value!r} cannot learn task {task.name!r} ({task.kind.value}); use {allowed}"
        )
    return chosen


def _estimator(algorithm: Algorithm, params: dict[str, Any], seed: int, y_train: np.ndarray | None) -> Any:
    if algorithm is Algorithm.RANDOM_FOREST:
        return RandomForestRegressor(**params, random_state=seed, n_jobs=1)
    if algorithm is Algorithm.XGBOOST:
        return XGBRegressor(**params, random_state=seed, n_jobs=1, tree_method="hist")
    if algorithm is Algorithm.XGB_CLASSIFIER:
        weight = params["scale_pos_weight"]
        if weight is None:
            assert y_train is not None
            positives = int((y_train == 1).sum())
            weight = (len(y_train) - positives) / positives
        return XGBClassifier(
            **{**params, "scale_pos_weight": weight},
            random_state=seed,
            n_jobs=1,
            tree_method="hist",
            eval_metric="logloss",
        )
    if algorithm is Algorithm.MLP:
        return MLPRegressor(
            hidden_layer_sizes=tuple(params["hidden_layer_sizes"]),
            max_iter=params["epochs"],
            batch_size=params["batch_size"],
            learning_rate_init=params["learning_rate_init"],
            alpha=params["alpha"],
            activation=params["activation"],
            random_state=seed,
        )
    if algorithm is Algorithm.KMEANS:
        return KMeans(**params, random_state=seed)
    raise UnknownAlgorithm(f"no estimator for {algorithm.value}")  # pragma: no cover - enum is exhaustive


def _check_inputs(task: TaskSpec, X: np.ndarray, y: np.ndarray | None, min_rows: int) -> tuple[np.ndarray, np.ndarray | None]:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(task.features):
        raise TrainingError(f"expected a matrix of {len(task.features)} columns ({', '.join(task.features)}), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise TrainingError("features hold NaN or infinite values")
    if len(X) < min_rows:
        raise NotEnoughData(f"{len(X)} usable rows for {task.name}; at least {min_rows} are needed")
    if task.kind is TaskKind.CLUSTERING:
        return X, None
    if y is None:
        raise TrainingError(f"task {task.name} needs its target {task.target!r}")
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(y) != len(X):
        raise TrainingError(f"{len(X)} feature rows but {len(y)} targets")
    if not np.isfinite(y).all():
        raise TrainingError(f"target {task.target!r} holds NaN or infinite values")
    if task.kind is TaskKind.CLASSIFICATION:
        if not np.isin(y, (0.0, 1.0)).all():
            raise TrainingError(f"target {task.target!r} must be 0 or 1")
        y = y.astype(np.int64)
    return X, y


def _split(
    kind: TaskKind, X: np.ndarray, y: np.ndarray | None, test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    if not 0.0 < test_size < 0.9:
        raise TrainingError(f"test_size must be between 0 and 0.9, got {test_size}")
    n_test = int(np.ceil(len(X) * test_size))
    if n_test < MIN_TEST_ROWS or len(X) - n_test < MIN_TEST_ROWS:
        raise NotEnoughData(
            f"{len(X)} rows with test_size {test_size} leave fewer than {MIN_TEST_ROWS} rows on one side of the split"
        )
    stratify = None
    if kind is TaskKind.CLASSIFICATION:
        assert y is not None
        counts = np.bincount(y, minlength=2)
        if counts.min() < 2:
            present = "no anomaly" if counts[1] == 0 else ("no normal" if counts[0] == 0 else "fewer than 2 of one class")
            raise NotEnoughData(f"the rows hold {present} examples ({counts[0]} normal, {counts[1]} anomaly); both classes are needed")
        stratify = y
    indices = np.arange(len(X))
    train_idx, test_idx = train_test_split(indices, test_size=test_size, random_state=seed, stratify=stratify)
    return (
        X[train_idx],
        X[test_idx],
        None if y is None else y[train_idx],
        None if y is None else y[test_idx],
    )


def _order_clusters(task: TaskSpec, pipeline: Pipeline) -> list[list[float]]:
    """Renumber categories by the order feature's centre value (raw units,
    rising) and return the centres in that order."""
    scaler: StandardScaler = pipeline.named_steps["scaler"]
    kmeans: KMeans = pipeline.named_steps["model"]
    raw = scaler.inverse_transform(kmeans.cluster_centers_)
    column = task.features.index(task.order_by) if task.order_by else 0
    order = np.argsort(raw[:, column], kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    kmeans.cluster_centers_ = kmeans.cluster_centers_[order]
    kmeans.labels_ = rank[kmeans.labels_]
    return raw[order].tolist()


def _fit_mlp(pipeline: Pipeline, X: np.ndarray, y: np.ndarray) -> None:
    """Fit on a standardised target, then fold the target scale into the
    output layer: the network learns at a sensible scale (incomes are tens of
    thousands) and stays a plain MLPRegressor that converts to ONNX as is."""
    mean, std = float(y.mean()), float(y.std()) or 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(X, (y - mean) / std)
    mlp: MLPRegressor = pipeline.named_steps["model"]
    mlp.coefs_[-1] = mlp.coefs_[-1] * std
    mlp.intercepts_[-1] = mlp.intercepts_[-1] * std + mean


def _metrics(task: TaskSpec, pipeline: Pipeline, X_test: np.ndarray, y_test: np.ndarray | None) -> dict[str, float]:
    if task.kind is TaskKind.REGRESSION:
        assert y_test is not None
        return evaluate.regression_metrics(y_test, pipeline.predict(X_test))
    if task.kind is TaskKind.CLASSIFICATION:
        assert y_test is not None
        return evaluate.classification_metrics(y_test, pipeline.predict(X_test))
    labels = pipeline.predict(X_test)
    # score() is minus the inertia of these rows in the model's scaled space.
    return evaluate.finite(
        {
            "silhouette": evaluate.silhouette(X_test, labels),
            "inertia": -float(pipeline.score(X_test)),
            "inertia_train": float(pipeline.named_steps["model"].inertia_),
        }
    )


def train(
    task: TaskSpec,
    algorithm: str | Algorithm | None,
    X: np.ndarray,
    y: np.ndarray | None,
    hyperparameters: dict[str, Any] | None = None,
    test_size: float = 0.2,
    seed: int = 0,
    *,
    min_rows: int = MIN_ROWS,
) -> TrainResult:
    """Fit ``task`` on ``X`` (columns in ``task.features`` order) and ``y``.

    Raises :class:`TrainingError` (or :class:`HyperparameterError`) with a
    message for the caller when the request cannot work.
    """
    chosen = resolve_algorithm(task, algorithm)
    params = hyperparams.resolve(chosen, hyperparameters)
    X, y = _check_inputs(task, X, y, max(min_rows, MIN_ROWS))
    X = X.astype(np.float32).astype(np.float64)
    X_train, X_test, y_train, y_test = _split(task.kind, X, y, test_size, seed)
    if chosen is Algorithm.KMEANS and params["n_clusters"] > len(X_train):
        raise NotEnoughData(f"{len(X_train)} training rows cannot form {params['n_clusters']} clusters")
    pipeline = Pipeline([("scaler", StandardScaler()), ("model", _estimator(chosen, params, seed, y_train))])
    centers = None
    if chosen is Algorithm.MLP:
        assert y_train is not None
        _fit_mlp(pipeline, X_train, y_train)
    else:
        pipeline.fit(X_train, y_train)
    if chosen is Algorithm.KMEANS:
        centers = _order_clusters(task, pipeline)
    if chosen is Algorithm.XGB_CLASSIFIER:
        params = {**params, "scale_pos_weight": float(pipeline.named_steps["model"].get_params()["scale_pos_weight"])}
    return TrainResult(
        task=task,
        algorithm=chosen,
        pipeline=pipeline,
        hyperparameters=params,
        metrics=_metrics(task, pipeline, X_test, y_test),
        X_test=X_test,
        y_test=y_test,
        rows_train=len(X_train),
        feature_means={name: float(v) for name, v in zip(task.features, X_train.mean(axis=0), strict=True)},
        centers=centers,
    )
