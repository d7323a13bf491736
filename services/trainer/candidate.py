"""A candidate model and the decision to activate it: pure, no I/O but the
active bundle read (sha256-checked).

Both models are judged on the candidate's held-out rows through ONNX
Runtime, the way serving will run them, by the task's primary metric (see
shared.ml.evaluate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from shared.ml import evaluate
from shared.ml.bundle import BundleIntegrityError
from shared.ml.export import export
from shared.ml.registry import ModelRecord
from shared.ml.serving import ServingModel
from shared.ml.training import TrainResult, train
from shared.streams import Algorithm, TaskSpec

log = structlog.get_logger(__name__)

ACTIVATED = "activated"
FORCED = "forced"
REJECTED = "rejected"


@dataclass(frozen=True)
class Candidate:
    result: TrainResult
    onnx_bytes: bytes
    score: float  # primary metric of the ONNX graph on the held-out rows

    @property
    def metrics(self) -> dict[str, float]:
        return self.result.metrics


@dataclass(frozen=True)
class Decision:
    decision: str
    activate: bool
    candidate_score: float
    active_score: float | None
    reason: str


def build_candidate(
    task: TaskSpec,
    algorithm: str | Algorithm | None,
    X: np.ndarray,
    y: np.ndarray | None,
    hyperparameters: dict[str, Any],
    test_size: float,
    seed: int,
    min_rows: int,
) -> Candidate:
    """Train, export to ONNX and check the graph (raises if it does not match)."""
    result = train(task, algorithm, X, y, hyperparameters, test_size, seed, min_rows=min_rows)
    onnx_bytes, scores = export(result)
    score = evaluate.primary_score(task.kind, result.X_test, result.y_test, scores.prediction)
    return Candidate(result, onnx_bytes, score)


def score_active(artifact_dir: Path, active: ModelRecord, candidate: Candidate) -> float | None:
    """The active model's primary metric on the candidate's held-out rows;
    None when it cannot be scored (bundle tampered or missing, other features)."""
    task = candidate.result.task
    try:
        model = ServingModel.load(artifact_dir, active.bundle_dir, active.sha256, active.id)
        if list(model.features) != list(task.features):
            log.info("active_model_incomparable", model_id=active.id, features=model.features)
            return None
        scores = model.score(candidate.result.X_test)
    except BundleIntegrityError as error:
        log.warning("active_model_refused", model_id=active.id, version=active.version, reason=str(error))
        return None
    except Exception as error:  # noqa: BLE001 - an unreadable active graph must not block its replacement
        log.warning("active_model_unusable", model_id=active.id, version=active.version, reason=repr(error))
        return None
    value = evaluate.primary_score(task.kind, candidate.result.X_test, candidate.result.y_test, scores.prediction)
    return None if math.isnan(value) else value


def decide(candidate_score: float, active_score: float | None, *, force: bool, tolerance: float, has_active: bool) -> Decision:
    if force:
        return Decision(FORCED, True, candidate_score, active_score, "forced by the request")
    if not has_active:
        return Decision(ACTIVATED, True, candidate_score, None, "no active model")
    if active_score is None:
        return Decision(ACTIVATED, True, candidate_score, None, "the active model cannot be scored")
    if evaluate.not_worse(candidate_score, active_score, tolerance):
        return Decision(ACTIVATED, True, candidate_score, active_score, "not worse than the active model")
    return Decision(REJECTED, False, candidate_score, active_score, "worse than the active model")
