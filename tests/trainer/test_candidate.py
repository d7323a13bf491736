"""Candidate models and the activation decision, without a broker."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from services.trainer.candidate import ACTIVATED, FORCED, REJECTED, build_candidate, decide, score_active
from shared.ml.bundle import write_bundle
from shared.ml.dataset import task_data
from shared.ml.publish import bundle_meta
from shared.ml.registry import ModelRecord
from tests.streams import PEOPLE
from tests.ml.synthetic import synthetic_rows


def test_decide() -> None:
    assert decide(0.5, None, force=False, tolerance=0.01, has_active=False).decision == ACTIVATED
    assert decide(0.5, None, force=False, tolerance=0.01, has_active=True).decision == ACTIVATED  # active unusable
    kept = decide(0.80, 0.805, force=False, tolerance=0.01, has_active=True)
    assert (kept.decision, kept.activate) == (ACTIVATED, True)
    worse = decide(0.70, 0.80, force=False, tolerance=0.01, has_active=True)
    assert (worse.decision, worse.activate, worse.candidate_score, worse.active_score) == (REJECTED, False, 0.70, 0.80)
    forced = decide(0.70, 0.80, force=True, tolerance=0.01, has_active=True)
    assert (forced.decision, forced.activate) == (FORCED, True)


@pytest.fixture(scope="module")
def candidates():
    task = PEOPLE.task("income")
    data = task_data(PEOPLE, task, synthetic_rows(PEOPLE, 500, 0))
    good = build_candidate(task, "xgboost", data, {"n_estimators": 30}, 0.2, 0, 20)
    weak = build_candidate(task, "random_forest", data, {"n_estimators": 3, "max_depth": 1}, 0.2, 0, 20)
    return good, weak


def _record(tmp_path: Path, candidate, version: int) -> ModelRecord:
    meta = bundle_meta("people", candidate.result, version, {"topic": "x"})
    relative, hashes, size = write_bundle(tmp_path, meta, candidate.onnx_bytes, lambda path: path.write_bytes(b"joblib"))
    return ModelRecord(
        id=version, stream="people", task="income", version=version, algorithm=meta.algorithm, hyperparameters={},
        features=meta.features, metrics=meta.metrics, training_window={}, rows_trained=meta.rows,
        bundle_dir=relative, sha256=hashes, size_bytes=size, run_id=None, active=True, created_at=datetime.now(UTC),
    )


def test_active_model_is_scored_on_the_candidates_held_out_rows(tmp_path: Path, candidates) -> None:
    good, weak = candidates
    assert good.score > weak.score
    active = _record(tmp_path, weak, 1)
    # The same rows and metric: the active model's own candidate score.
    assert score_active(tmp_path, active, weak) == pytest.approx(weak.score, abs=1e-9)
    assert score_active(tmp_path, active, good) < good.score


def test_an_active_bundle_that_fails_its_check_is_not_scored(tmp_path: Path, candidates) -> None:
    good, weak = candidates
    active = _record(tmp_path, weak, 1)
    path = tmp_path / active.bundle_dir / "model.onnx"
    path.write_bytes(path.read_bytes() + b"tampered")
    assert score_active(tmp_path, active, good) is None


def test_bundle_meta_carries_what_serving_needs(candidates) -> None:
    good, _ = candidates
    meta = bundle_meta("people", good.result, 4, {"topic": "features.people", "partitions": {"0": [0, 9]}})
    assert meta.features == list(PEOPLE.task("income").features)
    assert meta.kind == "regression" and meta.version == 4 and meta.target == "income"
    assert meta.training_window["partitions"] == {"0": [0, 9]}
    assert set(meta.feature_means) == set(meta.features)
    assert np.isfinite(list(meta.metrics.values())).all()
