"""A candidate model and the decision to make it the champion: pure, no I/O
but reading the champion's bundle (sha256-checked).

The gate is honest: champion and candidate are compared on the candidate's
held-out events *that the champion was not trained on either* (newer than
its training window, outside it, or in its own holdout), paired on the same
events, through ONNX Runtime the way serving runs them, by the task's gate
metric (see shared.ml.evaluate). Too few such events and the decision says
so instead of guessing: the candidate is registered but not activated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import structlog

from shared.ml import evaluate
from shared.ml.bundle import HOLDOUT_FILE, BundleIntegrityError, BundleMeta, variant_file, verified_bytes
from shared.ml.dataset import TaskData
from shared.ml.export import export
from shared.ml.inputs import encode_labels, event_inputs, target_labels
from shared.ml.registry import ModelRecord
from shared.ml.serving import ServingModel
from shared.ml.training import TrainResult, train
from shared.streams import Algorithm, StreamSpec, TaskKind, TaskSpec

log = structlog.get_logger(__name__)

ACTIVATED = "activated"
FORCED = "forced"
REJECTED = "rejected"
UNDECIDED = "undecided"
SHADOW = "shadow"


@dataclass(frozen=True)
class TrainedVariant:
    without: list[str]
    result: TrainResult
    onnx_bytes: bytes


@dataclass(frozen=True)
class Candidate:
    result: TrainResult
    onnx_bytes: bytes
    score: float  # gate metric of the ONNX graph on all its held-out rows
    test_events: list[Mapping[str, Any]]  # the held-out rows as features events
    variants: list[TrainedVariant] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, float]:
        return self.result.metrics


@dataclass(frozen=True)
class Decision:
    decision: str
    activate: bool
    candidate_score: float | None
    active_score: float | None
    reason: str
    rows: int = 0  # held-out events both models were scored on


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


def optional_subsets(task: TaskSpec) -> list[frozenset[str]]:
    """The sets of optional features a variant is trained without: every one
    of them for up to three optional features, else each alone and all."""
    names = list(task.optional_features)
    if not names or task.kind is TaskKind.CLUSTERING:
        return []
    if len(names) <= 3:
        return [frozenset(n for j, n in enumerate(names) if mask >> j & 1) for mask in range(1, 2 ** len(names))]
    return [frozenset([n]) for n in names] + [frozenset(names)]


def without(task: TaskSpec, names: frozenset[str]) -> TaskSpec:
    return task.model_copy(update={
        "features": tuple(f for f in task.features if f not in names),
        "optional_features": tuple(f for f in task.optional_features if f not in names),
    })


def build_candidate(
    task: TaskSpec,
    algorithm: str | Algorithm | None,
    data: TaskData,
    rows: Sequence[Mapping[str, Any]],
    hyperparameters: dict[str, Any],
    test_size: float,
    seed: int,
    min_rows: int,
    variant_data: Callable[[TaskSpec], TaskData] | None = None,
) -> Candidate:
    """Train, export to ONNX and check the graph (raises if it does not
    match); then the same for each variant of the task's optional features,
    from ``variant_data(task without them)``."""
    result = _fit(task, algorithm, data, hyperparameters, test_size, seed, min_rows)
    onnx_bytes, scores = export(result)
    assert data.kept is not None
    test_events = [rows[int(data.kept[i])] for i in result.test_rows.tolist()]
    variants = []
    for names in optional_subsets(task) if variant_data is not None else []:
        reduced = without(task, names)
        reduced_data = variant_data(reduced)  # type: ignore[misc]
        variant = _fit(reduced, result.algorithm, reduced_data, hyperparameters, test_size, seed, min_rows)
        variants.append(TrainedVariant(sorted(names), variant, export(variant)[0]))
    return Candidate(result, onnx_bytes, gate_score(result, scores.prediction), test_events, variants)


def _fit(task: TaskSpec, algorithm: str | Algorithm | None, data: TaskData, hyperparameters: dict[str, Any],
         test_size: float, seed: int, min_rows: int) -> TrainResult:
    return train(
        task, algorithm, data.X, data.y, hyperparameters, test_size, seed,
        inputs=data.inputs, classes=data.classes, positive=data.positive, min_rows=min_rows,
    )


# -- the honest gate ------------------------------------------------------------

def seen_by(window: Mapping[str, Any], holdout: set[str]) -> Callable[[Mapping[str, Any]], bool]:
    """Whether a model trained on ``window`` (its registry training window)
    with ``holdout`` held out was trained on an event (a features event dict
    carrying ``_partition`` and ``_offset``, as the trainer decodes them)."""
    dataset = window.get("dataset_id")
    spans = {int(p): (int(first), int(last)) for p, (first, last) in (window.get("partitions") or {}).items()}
    refit = bool(window.get("refit"))

    def seen(event: Mapping[str, Any]) -> bool:
        if not refit and event.get("event_id") in holdout:
            return False
        if dataset is not None:
            return event.get("dataset_id") == dataset
        if not spans:  # no provenance recorded: assume it saw everything but its holdout
            return True
        span = spans.get(int(event.get("_partition", -1)))
        return span is not None and span[0] <= int(event.get("_offset", -1)) <= span[1]

    return seen


def read_holdout(artifact_dir: Any, record: ModelRecord) -> set[str]:
    """The champion's held-out event ids (none if its bundle predates holdouts)."""
    if "holdout.json" not in record.sha256:
        return set()
    content = verified_bytes(artifact_dir, record.bundle_dir, HOLDOUT_FILE, record.sha256)
    return set(orjson.loads(content)["event_ids"])


@dataclass(frozen=True)
class PairedScores:
    rows: int
    candidate: float | None
    champion: float | None


def paired_scores(stream: StreamSpec, task: TaskSpec, candidate: ServingModel, champion: ServingModel,
                  events: Sequence[Mapping[str, Any]]) -> PairedScores:
    """Both models' gate metric on the events both can score, each from its
    own inputs (its own one-hot columns, its own variants)."""
    if not events:
        return PairedScores(0, None, None)
    answers = [model.predict(event_inputs(events, model.meta.inputs), len(events), task.optional_features)
               for model in (candidate, champion)]
    both = np.intersect1d(answers[0].rows, answers[1].rows)
    if not len(both):
        return PairedScores(0, None, None)
    picked = [events[i] for i in both.tolist()]
    scores = []
    for model, answer in zip((candidate, champion), answers, strict=True):
        prediction = answer.prediction[np.searchsorted(answer.rows, both)]
        scores.append(_metric(stream, task, model.meta, picked, prediction))
    return PairedScores(len(both), scores[0], scores[1])


def _metric(stream: StreamSpec, task: TaskSpec, meta: BundleMeta, events: list[Mapping[str, Any]],
            prediction: np.ndarray) -> float | None:
    if task.kind is TaskKind.CLUSTERING:
        X = np.asarray([[float((e.get("features") or {}).get(f, np.nan)) for f in task.features] for e in events])
        value = evaluate.gate_score(task.kind, task.gate_metric, X, None, prediction)
    elif task.kind is TaskKind.CLASSIFICATION:
        assert meta.classes is not None
        y = encode_labels(target_labels(stream, task, events), meta.classes)
        keep = np.isfinite(y)
        value = evaluate.gate_score(task.kind, task.gate_metric, np.empty((int(keep.sum()), 0)), y[keep],
                                    prediction[keep], n_classes=len(meta.classes), positive=meta.positive)
    else:
        assert task.target is not None
        y = np.array([float((e.get("targets") or {}).get(task.target, np.nan)) for e in events])
        keep = np.isfinite(y)
        value = evaluate.gate_score(task.kind, task.gate_metric, np.empty((int(keep.sum()), 0)), y[keep],
                                    prediction[keep])
    return None if math.isnan(value) else value


def champion_model(artifact_dir: Any, champion: ModelRecord) -> ServingModel | None:
    """The champion's bundle, or None when it cannot be read (tampered, missing)."""
    try:
        return ServingModel.load(artifact_dir, champion.bundle_dir, champion.sha256, champion.id)
    except BundleIntegrityError as error:
        log.warning("champion_refused", model_id=champion.id, version=champion.version, reason=str(error))
    except Exception as error:  # noqa: BLE001 - an unreadable champion must not block its replacement
        log.warning("champion_unusable", model_id=champion.id, version=champion.version, reason=repr(error))
    return None


def decide(paired: PairedScores | None, *, force: bool, tolerance: float, min_rows: int,
           has_champion: bool) -> Decision:
    """Whether the candidate becomes the champion, and why."""
    candidate = paired.candidate if paired else None
    champion = paired.champion if paired else None
    rows = paired.rows if paired else 0
    if force:
        return Decision(FORCED, True, candidate, champion, "forced by the request", rows)
    if not has_champion:
        return Decision(ACTIVATED, True, candidate, None, "no champion yet", rows)
    if paired is None:
        return Decision(ACTIVATED, True, None, None, "the champion cannot be read", rows)
    if rows < min_rows:
        return Decision(UNDECIDED, False, candidate, champion,
                        f"only {rows} held-out labelled events neither model was trained on; "
                        f"at least {min_rows} are needed to compare them", rows)
    if candidate is None or champion is None:
        return Decision(UNDECIDED, False, candidate, champion, "the gate metric is undefined on these events", rows)
    if evaluate.not_worse(candidate, champion, tolerance):
        return Decision(ACTIVATED, True, candidate, champion,
                        f"not worse than the champion on {rows} events neither was trained on", rows)
    return Decision(REJECTED, False, candidate, champion,
                    f"worse than the champion on {rows} events neither was trained on", rows)


def variant_files(candidate: Candidate) -> dict[str, bytes]:
    return {variant_file(v.without): v.onnx_bytes for v in candidate.variants}
