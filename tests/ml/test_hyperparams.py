"""Hyperparameter allow-lists: defaults, checks and clear errors."""

from __future__ import annotations

import pytest

from shared.ml.hyperparams import ALLOWED, HyperparameterError, resolve
from shared.streams import Algorithm, TaskKind


def test_defaults_are_complete_and_valid_for_every_algorithm() -> None:
    for algorithm in Algorithm:
        resolved = resolve(algorithm, {})
        assert set(resolved) == set(ALLOWED[algorithm])
        # Defaults pass their own checks (resolving them explicitly changes nothing).
        explicit = {k: v for k, v in resolved.items() if v is not None}
        assert resolve(algorithm, explicit) == resolved


def test_random_forest_depth_is_capped_by_default() -> None:
    assert resolve(Algorithm.RANDOM_FOREST, {})["max_depth"] is not None


def test_unknown_key_is_named() -> None:
    with pytest.raises(HyperparameterError, match=r"unknown hyperparameter 'max_leaves' for random_forest \(allowed: "):
        resolve(Algorithm.RANDOM_FOREST, {"max_leaves": 3})


def test_several_unknown_keys_are_all_named() -> None:
    with pytest.raises(HyperparameterError, match=r"'bogus', 'epochz'"):
        resolve(Algorithm.MLP, {"epochz": 3, "bogus": 1})


@pytest.mark.parametrize(
    ("algorithm", "given", "message"),
    [
        (Algorithm.RANDOM_FOREST, {"n_estimators": "many"}, "n_estimators must be an integer"),
        (Algorithm.RANDOM_FOREST, {"n_estimators": True}, "n_estimators must be an integer"),
        (Algorithm.RANDOM_FOREST, {"max_depth": 0}, "max_depth must be between 1 and 32"),
        (Algorithm.XGBOOST, {"learning_rate": 0}, r"learning_rate must be in \(0, 1\]"),
        (Algorithm.XGBOOST, {"subsample": 1.5}, "subsample must be in"),
        (Algorithm.MLP, {"hidden_layer_sizes": []}, "hidden_layer_sizes must be a list of 1 to 5"),
        (Algorithm.MLP, {"hidden_layer_sizes": [8, 0]}, r"hidden_layer_sizes\[1\] must be between"),
        (Algorithm.MLP, {"activation": "softmax"}, "activation must be one of relu, tanh, logistic"),
        (Algorithm.MLP, {"batch_size": "big"}, "batch_size must be an integer"),
        (Algorithm.KMEANS, {"n_clusters": 1}, "n_clusters must be between 2 and 50"),
        (Algorithm.MLP, {"early_stopping": "yes"}, "early_stopping must be true or false"),
    ],
)
def test_bad_values_are_refused_with_the_key(algorithm: Algorithm, given: dict, message: str) -> None:
    with pytest.raises(HyperparameterError, match=message):
        resolve(algorithm, given)


def test_class_weight_is_a_classification_hyperparameter() -> None:
    with pytest.raises(HyperparameterError, match="scale_pos_weight must be in"):
        resolve(Algorithm.XGBOOST, {"scale_pos_weight": -1}, TaskKind.CLASSIFICATION)
    with pytest.raises(HyperparameterError, match="unknown hyperparameter 'scale_pos_weight'"):
        resolve(Algorithm.XGBOOST, {"scale_pos_weight": 2.0}, TaskKind.REGRESSION)


def test_values_are_normalised() -> None:
    resolved = resolve(Algorithm.MLP, {"hidden_layer_sizes": 16, "epochs": 30.0, "batch_size": 64})
    assert resolved["hidden_layer_sizes"] == [16]
    assert resolved["epochs"] == 30 and isinstance(resolved["epochs"], int)
    assert resolved["batch_size"] == 64
    assert resolve(Algorithm.XGBOOST, {"learning_rate": 1})["learning_rate"] == 1.0
