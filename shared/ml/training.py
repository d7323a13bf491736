"""Train one task's model: a scikit-learn Pipeline(StandardScaler, estimator).

:func:`train` is pure (arrays in, fitted pipeline and held-out metrics out)
and runs in a worker thread in the trainer. Every estimator is told to use
one thread: the machine is shared with Kafka and PostgreSQL.

Inputs are rounded to float32 before fitting, because serving feeds the ONNX
graph float32: a model trained on exactly the values it will see scores the
held-out rows the same way in ONNX as in scikit-learn.

Classification targets arrive as class indices (shared.ml.inputs keeps the
labels); a binary task's positive class is index ``positive``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier, XGBRegressor

from shared.ml import evaluate, hyperparams
from shared.ml.algorithms import NotEnoughData, TrainingError, UnknownAlgorithm, resolve_algorithm
from shared.ml.drift import FeatureReference, reference
from shared.ml.hyperparams import HyperparameterError
from shared.ml.inputs import InputColumn, feature_names
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


@dataclass(frozen=True)
class TrainResult:
    task: TaskSpec
    algorithm: Algorithm
    pipeline: Pipeline
    inputs: list[InputColumn]  # what the matrix's columns are (category fields one-hot)
    hyperparameters: dict[str, Any]  # effective values, JSON-safe
    metrics: dict[str, float]  # held-out
    X_test: np.ndarray  # float64, float32-representable
    y_test: np.ndarray | None
    test_rows: np.ndarray  # indices into the X given of the held-out rows
    rows_train: int
    feature_means: dict[str, float]
    classes: list[str] | None = None  # classification: labels in index order
    positive: int | None = None  # binary classification: the positive class index
    # Clustering: centres in raw units, row i is category i.
    centers: list[list[float]] | None = None
    evaluation: dict[str, Any] = field(default_factory=dict)  # e.g. the confusion matrix
    reference: dict[str, FeatureReference] = field(default_factory=dict)  # drift bins of the training rows

    @property
    def kind(self) -> TaskKind:
        return self.task.kind

    @property
    def feature_names(self) -> list[str]:
        return feature_names(self.inputs)


def _estimator(kind: TaskKind, algorithm: Algorithm, params: dict[str, Any], seed: int,
               y_train: np.ndarray | None, n_classes: int) -> Any:
    classify = kind is TaskKind.CLASSIFICATION
    if algorithm is Algorithm.RANDOM_FOREST:
        model = RandomForestClassifier if classify else RandomForestRegressor
        return model(**params, random_state=seed, n_jobs=1)
    if algorithm is Algorithm.XGBOOST:
        if not classify:
            return XGBRegressor(**params, random_state=seed, n_jobs=1, tree_method="hist")
        options = dict(params)
        weight = options.pop("scale_pos_weight", None)
        if n_classes == 2:
            if weight is None:
                assert y_train is not None
                positives = int((y_train == 1).sum())
                weight = (len(y_train) - positives) / positives
            options["scale_pos_weight"] = weight
        return XGBClassifier(**options, random_state=seed, n_jobs=1, tree_method="hist", eval_metric="logloss")
    if algorithm is Algorithm.MLP:
        model = MLPClassifier if classify else MLPRegressor
        return model(
            hidden_layer_sizes=tuple(params["hidden_layer_sizes"]),
            max_iter=params["epochs"],
            batch_size=params["batch_size"],
            learning_rate_init=params["learning_rate_init"],
            alpha=params["alpha"],
            activation=params["activation"],
            early_stopping=params["early_stopping"],
            n_iter_no_change=params["patience"],
            random_state=seed,
        )
    if algorithm is Algorithm.KMEANS:
        return KMeans(**params, random_state=seed)
    raise UnknownAlgorithm(f"no estimator for {algorithm.value}")  # pragma: no cover - enum is exhaustive


def _check_inputs(task: TaskSpec, X: np.ndarray, y: np.ndarray | None, names: list[str],
                  n_classes: int, min_rows: int) -> tuple[np.ndarray, np.ndarray | None]:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(names):
        raise TrainingError(f"expected a matrix of {len(names)} columns ({', '.join(names)}), got shape {X.shape}")
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
        if n_classes < 2:
            raise NotEnoughData(f"target {task.target!r} has {n_classes} class in these rows; at least 2 are needed")
        if not np.isin(y, np.arange(n_classes)).all():
            raise TrainingError(f"target {task.target!r} must hold class indices 0 to {n_classes - 1}")
        y = y.astype(np.int64)
    return X, y


def _split(kind: TaskKind, X: np.ndarray, y: np.ndarray | None, test_size: float, seed: int,
           classes: list[str] | None) -> tuple[np.ndarray, np.ndarray]:
    """(train row indices, test row indices)."""
    if not 0.0 < test_size < 0.9:
        raise TrainingError(f"test_size must be between 0 and 0.9, got {test_size}")
    n_test = int(np.ceil(len(X) * test_size))
    if n_test < MIN_TEST_ROWS or len(X) - n_test < MIN_TEST_ROWS:
        raise NotEnoughData(
            f"{len(X)} rows with test_size {test_size} leave fewer than {MIN_TEST_ROWS} rows on one side of the split"
        )
    stratify = None
    if kind is TaskKind.CLASSIFICATION:
        assert y is not None and classes is not None
        counts = np.bincount(y, minlength=len(classes))
        if counts.min() < 2:
            rare = ", ".join(f"{classes[i]!r} ({counts[i]})" for i in np.flatnonzero(counts < 2))
            raise NotEnoughData(f"every class needs at least 2 examples to be learned and tested; too few: {rare}")
        stratify = y
    indices = np.arange(len(X))
    train_idx, test_idx = train_test_split(indices, test_size=test_size, random_state=seed, stratify=stratify)
    return train_idx, test_idx


def _order_clusters(task: TaskSpec, names: list[str], pipeline: Pipeline) -> list[list[float]]:
    """Renumber categories by the order feature's centre value (raw units,
    rising) and return the centres in that order."""
    scaler: StandardScaler = pipeline.named_steps["scaler"]
    kmeans: KMeans = pipeline.named_steps["model"]
    raw = scaler.inverse_transform(kmeans.cluster_centers_)
    column = names.index(task.order_by) if task.order_by in names else 0
    order = np.argsort(raw[:, column], kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    kmeans.cluster_centers_ = kmeans.cluster_centers_[order]
    kmeans.labels_ = rank[kmeans.labels_]
    return raw[order].tolist()


def _fit_mlp_regressor(pipeline: Pipeline, X: np.ndarray, y: np.ndarray) -> None:
    """Fit on a standardised target, then fold the target scale into the
    output layer: the network learns at a sensible scale (incomes are tens of
    thousands) and stays a plain MLPRegressor that converts to ONNX as is."""
    mean, std = float(y.mean()), float(y.std()) or 1.0
    pipeline.fit(X, (y - mean) / std)
    mlp: MLPRegressor = pipeline.named_steps["model"]
    mlp.coefs_[-1] = mlp.coefs_[-1] * std
    mlp.intercepts_[-1] = mlp.intercepts_[-1] * std + mean


def _metrics(task: TaskSpec, pipeline: Pipeline, X_test: np.ndarray, y_test: np.ndarray | None,
             classes: list[str] | None, positive: int | None) -> tuple[dict[str, float], dict[str, Any]]:
    if task.kind is TaskKind.REGRESSION:
        assert y_test is not None
        return evaluate.regression_metrics(y_test, pipeline.predict(X_test)), {}
    if task.kind is TaskKind.CLASSIFICATION:
        assert y_test is not None and classes is not None
        predicted = pipeline.predict(X_test)
        metrics = evaluate.classification_metrics(y_test, predicted, len(classes), positive)
        return metrics, {"classes": classes, "confusion_matrix": evaluate.confusion(y_test, predicted, len(classes))}
    labels = pipeline.predict(X_test)
    # score() is minus the inertia of these rows in the model's scaled space.
    return evaluate.finite(
        {
            "silhouette": evaluate.silhouette(X_test, labels),
            "inertia": -float(pipeline.score(X_test)),
            "inertia_train": float(pipeline.named_steps["model"].inertia_),
        }
    ), {}


def train(
    task: TaskSpec,
    algorithm: str | Algorithm | None,
    X: np.ndarray,
    y: np.ndarray | None,
    hyperparameters: dict[str, Any] | None = None,
    test_size: float = 0.2,
    seed: int = 0,
    *,
    inputs: list[InputColumn] | None = None,
    classes: list[str] | None = None,
    positive: int | None = None,
    min_rows: int = MIN_ROWS,
) -> TrainResult:
    """Fit ``task`` on ``X`` (columns described by ``inputs``; by default the
    task's features, all numeric) and ``y`` (class indices into ``classes``
    for classification).

    Raises :class:`TrainingError` (or :class:`HyperparameterError`) with a
    message for the caller when the request cannot work.
    """
    inputs = list(inputs) if inputs is not None else [InputColumn(name=name) for name in task.features]
    names = feature_names(inputs)
    chosen = resolve_algorithm(task, algorithm)
    params = hyperparams.resolve(chosen, hyperparameters, task.kind)
    if task.kind is TaskKind.CLASSIFICATION and classes is None and y is not None and len(y):
        # Class indices given without their labels: name the classes by index.
        classes = [str(i) for i in range(int(np.nanmax(y)) + 1)]
        positive = 1 if positive is None and len(classes) == 2 else positive
    n_classes = len(classes or ())
    X, y = _check_inputs(task, X, y, names, n_classes, max(min_rows, MIN_ROWS))
    X = X.astype(np.float32).astype(np.float64)
    train_rows, test_rows = _split(task.kind, X, y, test_size, seed, classes)
    X_train, X_test = X[train_rows], X[test_rows]
    y_train, y_test = (None, None) if y is None else (y[train_rows], y[test_rows])
    if task.kind is TaskKind.CLASSIFICATION and len(np.unique(y_train)) < n_classes:
        raise NotEnoughData("a class is missing from the training split")
    if chosen is Algorithm.KMEANS and params["n_clusters"] > len(X_train):
        raise NotEnoughData(f"{len(X_train)} training rows cannot form {params['n_clusters']} clusters")
    pipeline = Pipeline(
        [("scaler", StandardScaler()), ("model", _estimator(task.kind, chosen, params, seed, y_train, n_classes))]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if chosen is Algorithm.MLP and task.kind is TaskKind.REGRESSION:
            assert y_train is not None
            _fit_mlp_regressor(pipeline, X_train, y_train)
        else:
            pipeline.fit(X_train, y_train)
    centers = _order_clusters(task, names, pipeline) if chosen is Algorithm.KMEANS else None
    if chosen is Algorithm.XGBOOST and task.kind is TaskKind.CLASSIFICATION and n_classes == 2:
        params = {**params, "scale_pos_weight": float(pipeline.named_steps["model"].get_params()["scale_pos_weight"])}
    metrics, evaluation = _metrics(task, pipeline, X_test, y_test, classes, positive)
    return TrainResult(
        task=task,
        algorithm=chosen,
        pipeline=pipeline,
        inputs=inputs,
        hyperparameters=params,
        metrics=metrics,
        X_test=X_test,
        y_test=y_test,
        test_rows=test_rows,
        rows_train=len(X_train),
        feature_means={name: float(v) for name, v in zip(names, X_train.mean(axis=0), strict=True)},
        classes=classes,
        positive=positive,
        centers=centers,
        evaluation=evaluation,
        reference=reference(inputs, X_train),
    )


def refit_all(result: TrainResult, X: np.ndarray, y: np.ndarray | None, seed: int = 0) -> TrainResult:
    """``result``'s estimator fitted again on every row (after its validation);
    the metrics stay the validation's, and the check rows become every row."""
    X = np.asarray(X, dtype=np.float64).astype(np.float32).astype(np.float64)
    y_fit = None if y is None else (np.asarray(y).astype(np.int64) if result.kind is TaskKind.CLASSIFICATION else y)
    pipeline = Pipeline([
        ("scaler", StandardScaler()),
        ("model", _estimator(result.kind, result.algorithm, dict(result.hyperparameters), seed, y_fit,
                             len(result.classes or ()))),
    ])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if result.algorithm is Algorithm.MLP and result.kind is TaskKind.REGRESSION:
            assert y_fit is not None
            _fit_mlp_regressor(pipeline, X, y_fit)
        else:
            pipeline.fit(X, y_fit)
    centers = _order_clusters(result.task, result.feature_names, pipeline) if result.algorithm is Algorithm.KMEANS else None
    return replace(result, pipeline=pipeline, X_test=X, y_test=y_fit, test_rows=np.arange(len(X)),
                   rows_train=len(X), centers=centers if centers is not None else result.centers)
