"""Which algorithm learns a task, and the errors a training request can meet.

Kept apart from shared.ml.training so that the gateway can check a request
without importing scikit-learn and XGBoost (about 180 MB it never uses).
"""

from __future__ import annotations

from shared.streams import Algorithm, TaskSpec


class TrainingError(ValueError):
    """A training request that cannot succeed; the message says why."""


class UnknownAlgorithm(TrainingError):
    pass


class NotEnoughData(TrainingError):
    pass


def resolve_algorithm(task: TaskSpec, algorithm: str | Algorithm | None) -> Algorithm:
    """The algorithm to train ``task`` with (its default when None)."""
    if algorithm is None or algorithm == "":
        return task.default
    try:
        chosen = Algorithm(algorithm)
    except ValueError:
        known = ", ".join(a.value for a in Algorithm)
        raise UnknownAlgorithm(f"unknown algorithm {algorithm!r} (algorithms: {known})") from None
    if chosen not in task.allowed_algorithms:
        allowed = ", ".join(a.value for a in task.allowed_algorithms)
        raise UnknownAlgorithm(f"algorithm {chosen.value!r} cannot learn task {task.name!r} ({task.kind.value}); use {allowed}")
    return chosen
