"""Training every algorithm on synthetic rows built from the stream declarations."""

from __future__ import annotations

import numpy as np
import pytest

from shared.ml.dataset import task_data
from shared.ml.hyperparams import HyperparameterError
from shared.ml.training import NotEnoughData, TrainingError, UnknownAlgorithm, resolve_algorithm, train
from shared.streams import Algorithm, TaskKind, TaskSpec
from tests.streams import ENERGY, PEOPLE, PRESSURE, STREAMS
from tests.ml.synthetic import synthetic_rows

CASES = [
    (stream, task, algorithm)
    for stream in STREAMS.values()
    for task in stream.tasks
    for algorithm in task.allowed_algorithms
]


def _data(stream, task: TaskSpec, n: int = 800, seed: int = 1):
    return task_data(stream, task, synthetic_rows(stream, n, seed))


@pytest.mark.parametrize(("stream", "task", "algorithm"), CASES, ids=lambda v: getattr(v, "name", None) or str(v))
def test_every_algorithm_learns_its_task(stream, task: TaskSpec, algorithm: Algorithm) -> None:
    data = _data(stream, task)
    result = train(task, algorithm, data.X, data.y, {}, test_size=0.25, seed=3,
                   inputs=data.inputs, classes=data.classes, positive=data.positive)
    assert result.algorithm is algorithm
    assert result.rows_train + len(result.X_test) == data.rows
    assert set(result.feature_means) == set(data.feature_names)
    if task.kind is TaskKind.REGRESSION:
        assert set(result.metrics) == {"r2", "mae", "rmse", "neg_mae", "neg_rmse"}
        assert result.metrics["r2"] > 0.8, result.metrics
    elif task.kind is TaskKind.CLASSIFICATION:
        assert set(result.metrics) == {"accuracy", "macro_f1", "precision", "recall", "f1"}
        assert result.metrics["f1"] > 0.6, result.metrics
    else:
        assert {"silhouette", "inertia"} <= set(result.metrics)
        assert result.metrics["silhouette"] > 0.4, result.metrics
        assert result.centers is not None and len(result.centers) == 3


def test_dataset_drops_rows_without_features_or_target() -> None:
    task = PEOPLE.task("income")
    rows = synthetic_rows(PEOPLE, 10, 0)
    del rows[0]["features"][task.features[1]]
    rows[1]["targets"] = {}
    rows[2]["features"][task.features[0]] = None
    data = task_data(PEOPLE, task, rows)
    assert data.rows == 7 and data.dropped == 3
    assert data.X.shape == (7, len(task.features))


def test_kmeans_categories_are_numbered_by_the_order_feature() -> None:
    task = ENERGY.task("cluster")
    data = _data(ENERGY, task)
    result = train(task, "kmeans", data.X, None, {"n_clusters": 3}, 0.2, 0)
    column = task.features.index(task.order_by)
    centres = np.asarray(result.centers)
    assert np.all(np.diff(centres[:, column]) > 0)
    # The fitted model agrees with the published centres: each centre is in its own category.
    assert result.pipeline.predict(centres).tolist() == [0, 1, 2]


def test_kmeans_categories_are_stable_across_retrains_on_shuffled_data() -> None:
    task = ENERGY.task("cluster")
    data = _data(ENERGY, task, n=1200)
    rng = np.random.default_rng(7)
    first_order, second_order = rng.permutation(data.rows), rng.permutation(data.rows)
    first = train(task, "kmeans", data.X[first_order], None, {}, 0.2, seed=1)
    second = train(task, "kmeans", data.X[second_order], None, {}, 0.2, seed=2)
    probe = data.X[:300]
    agreement = (first.pipeline.predict(probe) == second.pipeline.predict(probe)).mean()
    assert agreement > 0.98


def test_classifier_weighs_the_rare_class() -> None:
    task = PRESSURE.task("anomaly")
    data = task_data(PRESSURE, task, synthetic_rows(PRESSURE, 1000, 2, anomaly_rate=0.1))
    result = train(task, None, data.X, data.y, {}, 0.2, 0)
    positives = (data.y == 1).sum()
    expected = (data.rows - positives) / positives
    assert result.hyperparameters["scale_pos_weight"] == pytest.approx(expected, rel=0.15)
    forced = train(task, None, data.X, data.y, {"scale_pos_weight": 2.5}, 0.2, 0)
    assert forced.hyperparameters["scale_pos_weight"] == 2.5


def test_default_and_unknown_algorithms() -> None:
    task = PEOPLE.task("income")
    assert resolve_algorithm(task, None) is task.default
    with pytest.raises(UnknownAlgorithm, match="unknown algorithm 'svm'"):
        resolve_algorithm(task, "svm")
    with pytest.raises(UnknownAlgorithm, match="cannot learn task 'income' .regression.; use random_forest, xgboost, mlp"):
        resolve_algorithm(task, "kmeans")


def test_bad_hyperparameters_fail_before_training() -> None:
    task = PEOPLE.task("income")
    data = _data(PEOPLE, task, n=100)
    with pytest.raises(HyperparameterError, match="unknown hyperparameter 'depth'"):
        train(task, "random_forest", data.X, data.y, {"depth": 3})


def test_too_few_rows() -> None:
    task = PEOPLE.task("income")
    data = _data(PEOPLE, task, n=10)
    with pytest.raises(NotEnoughData, match="10 usable rows for income; at least 20"):
        train(task, None, data.X, data.y)


def test_single_class_is_refused() -> None:
    task = PRESSURE.task("anomaly")
    data = _data(PRESSURE, task, n=100)
    with pytest.raises(NotEnoughData, match="1 class"):
        train(task, None, data.X, np.zeros(data.rows))


def test_malformed_inputs_are_refused() -> None:
    task = PEOPLE.task("income")
    data = _data(PEOPLE, task, n=100)
    with pytest.raises(TrainingError, match="expected a matrix of 4 columns"):
        train(task, None, data.X[:, :2], data.y)
    bad = data.X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(TrainingError, match="NaN"):
        train(task, None, bad, data.y)
    with pytest.raises(TrainingError, match="needs its target"):
        train(task, None, data.X, None)
    with pytest.raises(TrainingError, match="test_size"):
        train(task, None, data.X, data.y, test_size=0.95)


def test_mlp_learns_large_targets() -> None:
    # Incomes are tens of thousands: the target is standardised for fitting
    # and the scale folded back into the output layer.
    task = PEOPLE.task("income")
    data = _data(PEOPLE, task, n=600)
    result = train(task, "mlp", data.X, data.y, {"hidden_layer_sizes": [16], "epochs": 300}, 0.2, 0)
    assert result.metrics["r2"] > 0.8
    predictions = result.pipeline.predict(result.X_test)
    assert abs(predictions.mean() - result.y_test.mean()) < 0.1 * result.y_test.std() + 1
