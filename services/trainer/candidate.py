"""A candidate model and the decision to activate it: pure, no I/O but the
active bundle read (sha256-checked).

Both models are judged on the candidate's held-out rows through ONNX
Runtime, the way serving will run them, by the task's gate metric (see
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
from shared.ml.dataset import TaskData
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
    score: float  # gate metric of the ONNX graph on the held-out rows

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


def gate_score(result: TrainResult, prediction: np.ndarray) -> float:
    """The task's gate metric of ``prediction`` on the candidate's held-out rows."""
    return evaluate.gate_score(
        result.kind,
        result.task.gate_metric,
        result.X_test,
        result.y_test,
        prediction,
        n_classes=len(result.classes or ()),
        positive=result.positive,
    )


def build_candidate(
    task: TaskSpec,
    algorithm: str | Algorithm | None,
    data: TaskData,
    hyperparameters: dict[str, Any],
    test_size: float,
    seed: int,
    min_rows: int,
) -> Candidate:
    """Train, export to ONNX and check the graph (raises if it does not match)."""
    result = train(
        task, algorithm, data.X, data.y, hyperparameters, test_size, seed,
        inputs=data.inputs, classes=data.classes, positive=data.positive, min_rows=min_rows,
    )
    onnx_bytes, scores = export(result)
    return Candidate(result, onnx_bytes, gate_score(result, scores.prediction))


def score_active(artifact_dir: Path, active: ModelRecord, candidate: Candidate) -> float | None:
    """The active model's primary metric on the candidate's held-out rows;
    None when it cannot be scored (bundle tampered or missing, other features)."""
    result = candidate.result
    try:
        model = ServingModel.load(artifact_dir, active.bundle_dir, active.sha256, active.id)
        if list(model.features) != result.feature_names or model.meta.classes != result.classes:
            log.info("active_model_incomparable", model_id=active.id, features=model.features)
            return None
        scores = model.score(result.X_test.astype(np.float32))
    except BundleIntegrityError as error:
        log.warning("active_model_refused", model_id=active.id, version=active.version, reason=str(error))
        return None
    except Exception as error:  # noqa: BLE001 - an unreadable active graph must not block its replacement
        log.warning("active_model_unusable", model_id=active.id, version=active.version, reason=repr(error))
        return None
    value = gate_score(result, scores.prediction)
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
