"""Hyperparameters each algorithm accepts, with their defaults and bounds.

A training request names hyperparameters in a JSON object; anything not on
an algorithm's allow-list, of the wrong type or out of range is refused with
a message naming the key, before any data is touched. Defaults keep bundles
small (a capped forest depth) and training single-threaded (the machine is
shared with the broker and the database).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.streams import Algorithm, TaskKind


class HyperparameterError(ValueError):
    """A hyperparameter is unknown, of the wrong type or out of range."""


Check = Callable[[str, Any], Any]


def _integer(low: int, high: int, *, allow_none: bool = False) -> Check:
    def check(name: str, value: Any) -> Any:
        if value is None and allow_none:
            return None
        # JSON has no int/float distinction for 10.0; bool is an int in Python
        # but never a sensible count.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise HyperparameterError(f"{name} must be an integer, got {value!r}")
        if not low <= value <= high:
            raise HyperparameterError(f"{name} must be between {low} and {high}, got {value}")
        return value

    return check


def _number(low: float, high: float, *, low_open: bool = False) -> Check:
    def check(name: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise HyperparameterError(f"{name} must be a number, got {value!r}")
        value = float(value)
        too_low = value <= low if low_open else value < low
        if too_low or value > high or value != value:
            bound = "(" if low_open else "["
            raise HyperparameterError(f"{name} must be in {bound}{low:g}, {high:g}], got {value:g}")
        return value

    return check


def _choice(*options: str) -> Check:
    def check(name: str, value: Any) -> Any:
        if value not in options:
            raise HyperparameterError(f"{name} must be one of {', '.join(options)}, got {value!r}")
        return value

    return check


def _layers(name: str, value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= 5:
        raise HyperparameterError(f"{name} must be a list of 1 to 5 layer sizes, got {value!r}")
    size = _integer(1, 1024)
    return [size(f"{name}[{i}]", layer) for i, layer in enumerate(value)]


def _boolean(name: str, value: Any) -> Any:
    if not isinstance(value, bool):
        raise HyperparameterError(f"{name} must be true or false, got {value!r}")
    return value


def _batch_size(name: str, value: Any) -> Any:
    if value == "auto":
        return value
    return _integer(1, 65536)(name, value)


def _max_features(name: str, value: Any) -> Any:
    if value is None or value in ("sqrt", "log2"):
        return value
    if isinstance(value, float):
        return _number(0.0, 1.0, low_open=True)(name, value)
    return _integer(1, 1000)(name, value)


@dataclass(frozen=True)
class Param:
    default: Any
    check: Check


_TREE_BOOSTING: dict[str, Param] = {
    "n_estimators": Param(100, _integer(1, 2000)),
    "max_depth": Param(6, _integer(1, 16)),
    "learning_rate": Param(0.1, _number(0.0, 1.0, low_open=True)),
    "subsample": Param(1.0, _number(0.0, 1.0, low_open=True)),
    "colsample_bytree": Param(1.0, _number(0.0, 1.0, low_open=True)),
    "min_child_weight": Param(1.0, _number(0.0, 1e6)),
    "reg_lambda": Param(1.0, _number(0.0, 1e6)),
    "reg_alpha": Param(0.0, _number(0.0, 1e6)),
}

ALLOWED: dict[Algorithm, dict[str, Param]] = {
    Algorithm.RANDOM_FOREST: {
        "n_estimators": Param(50, _integer(1, 500)),
        # Capped so a bundle is megabytes: an uncapped forest on a 20k-row
        # window grows to hundreds (depth 10 with leaves of 2 or more rows:
        # about 3 MB of ONNX for 20k rows, at the accuracy of depth 12).
        "max_depth": Param(10, _integer(1, 32)),
        "min_samples_leaf": Param(2, _integer(1, 10_000)),
        "min_samples_split": Param(2, _integer(2, 10_000)),
        "max_features": Param(1.0, _max_features),
    },
    Algorithm.XGBOOST: dict(_TREE_BOOSTING),
    Algorithm.MLP: {
        "hidden_layer_sizes": Param([64, 32], _layers),
        "epochs": Param(200, _integer(1, 5000)),
        "batch_size": Param("auto", _batch_size),
        "learning_rate_init": Param(0.001, _number(0.0, 1.0, low_open=True)),
        "alpha": Param(0.0001, _number(0.0, 100.0)),
        "activation": Param("relu", _choice("relu", "tanh", "logistic")),
        # Hold out 10% of the training rows and stop once their score has not
        # improved for ``patience`` epochs.
        "early_stopping": Param(False, _boolean),
        "patience": Param(10, _integer(1, 1000)),
    },
    Algorithm.KMEANS: {
        "n_clusters": Param(3, _integer(2, 50)),
        "n_init": Param(4, _integer(1, 50)),
        "max_iter": Param(300, _integer(1, 5000)),
    },
}


# Binary classification with XGBoost: None means negatives / positives of the
# training split (class imbalance).
_SCALE_POS_WEIGHT = Param(None, lambda n, v: None if v is None else _number(0.0, 1e6, low_open=True)(n, v))


def accepted(algorithm: Algorithm, kind: TaskKind) -> dict[str, Param]:
    """The hyperparameters ``algorithm`` accepts for a task of ``kind``."""
    params = dict(ALLOWED[algorithm])
    if algorithm is Algorithm.XGBOOST and kind is TaskKind.CLASSIFICATION:
        params["scale_pos_weight"] = _SCALE_POS_WEIGHT
    return params


def resolve(algorithm: Algorithm, given: Mapping[str, Any] | None, kind: TaskKind = TaskKind.REGRESSION) -> dict[str, Any]:
    """Defaults overlaid with ``given``, every value checked; JSON-safe."""
    allowed = accepted(algorithm, kind)
    given = dict(given or {})
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise HyperparameterError(
            f"unknown hyperparameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"for {algorithm.value} (allowed: {', '.join(sorted(allowed))})"
        )
    resolved: dict[str, Any] = {}
    for name, param in allowed.items():
        resolved[name] = param.check(name, given[name]) if name in given else param.default
    return resolved
