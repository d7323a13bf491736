"""ONNX export: the served graph reproduces the fitted pipeline, through the
real bundle files and ServingModel."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import joblib
import numpy as np
import pytest

from shared.ml.bundle import BundleIntegrityError, BundleMeta, write_bundle
from shared.ml.dataset import fit_rows
from shared.ml.export import OnnxMismatchError, check_onnx, export, reference_scores, to_onnx
from shared.ml.serving import ServingModel
from shared.ml.training import TrainResult, train
from shared.streams import TaskKind
from tests.streams import ENERGY, PEOPLE, PRESSURE, STREAMS
from tests.ml.synthetic import synthetic_rows

CASES = [(s, t, a) for s in STREAMS.values() for t in s.tasks for a in t.allowed_algorithms]


def _trained(stream, task, algorithm, *, n: int = 600, integer: bool = False, hyperparameters=None) -> TrainResult:
    small = {"n_estimators": 20} if algorithm in ("random_forest", "xgboost") else {}
    rows = synthetic_rows(stream, n, 4, integer_features=integer)
    return fit_rows(stream, task, rows, algorithm, hyperparameters or small, 0.25, 0)


def _bundle(tmp_path: Path, result: TrainResult, onnx_bytes: bytes) -> tuple[str, dict[str, str]]:
    meta = BundleMeta(
        stream=next(s.name for s in STREAMS.values() if result.task in s.tasks),
        task=result.task.name,
        kind=result.kind.value,
        algorithm=result.algorithm.value,
        version=1,
        inputs=result.inputs,
        features=result.feature_names,
        classes=result.classes,
        positive=result.positive,
        feature_means=result.feature_means,
        rows=result.rows_train,
        centers=result.centers,
    )
    relative, hashes, size = write_bundle(tmp_path, meta, onnx_bytes, partial(joblib.dump, result.pipeline))
    assert size > len(onnx_bytes)
    return relative, hashes


@pytest.mark.parametrize(("stream", "task", "algorithm"), CASES, ids=lambda v: getattr(v, "name", None) or str(v))
@pytest.mark.parametrize("integer", [False, True], ids=["continuous", "integer-valued"])
def test_bundle_round_trip_scores_like_the_pipeline(tmp_path: Path, stream, task, algorithm, integer: bool) -> None:
    # Integer-valued features put many held-out rows exactly on tree split
    # thresholds: the case float32 scaling in the graph gets wrong.
    result = _trained(stream, task, algorithm, integer=integer)
    onnx_bytes, _ = export(result)
    relative, hashes = _bundle(tmp_path, result, onnx_bytes)
    model = ServingModel.load(tmp_path, relative, hashes)
    served = model.score(result.X_test)
    expected = reference_scores(result, result.X_test)
    if task.kind is TaskKind.REGRESSION:
        scale = np.abs(expected.prediction).max() + 1
        np.testing.assert_allclose(served.prediction, expected.prediction, rtol=1e-4, atol=1e-5 * scale)
        assert served.score is None
    else:
        assert (served.prediction == expected.prediction).mean() > 0.99
        np.testing.assert_allclose(served.score, expected.score, rtol=1e-3, atol=1e-4)


def test_kmeans_score_is_the_distance_to_the_nearest_centre_in_scaled_units(tmp_path: Path) -> None:
    task = ENERGY.task("cluster")
    result = _trained(ENERGY, task, "kmeans")
    onnx_bytes, _ = export(result)
    relative, hashes = _bundle(tmp_path, result, onnx_bytes)
    model = ServingModel.load(tmp_path, relative, hashes)
    served = model.score(result.X_test.astype(np.float32))
    scaled = result.pipeline.named_steps["scaler"].transform(result.X_test)
    kmeans = result.pipeline.named_steps["model"]
    np.testing.assert_allclose(served.score, kmeans.transform(scaled).min(axis=1), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(served.prediction, kmeans.predict(scaled))
    # Categories follow the published (sorted) centres.
    assert model.score(np.asarray(result.centers, dtype=np.float32)).prediction.tolist() == [0.0, 1.0, 2.0]


def test_classifier_score_is_the_anomaly_probability(tmp_path: Path) -> None:
    task = PRESSURE.task("anomaly")
    result = _trained(PRESSURE, task, "xgboost")
    onnx_bytes, scores = export(result)
    probabilities = result.pipeline.predict_proba(result.X_test)[:, 1]
    np.testing.assert_allclose(scores.score, probabilities, atol=1e-5)
    assert set(np.unique(scores.prediction)) <= {0.0, 1.0}


def test_a_graph_that_does_not_match_is_refused() -> None:
    task = PEOPLE.task("income")
    result = _trained(PEOPLE, task, "xgboost")
    onnx_bytes = to_onnx(result)
    other = _trained(PEOPLE, task, "xgboost", hyperparameters={"n_estimators": 5})
    with pytest.raises(OnnxMismatchError, match=r"refused: predictions differ on \d+ of \d+ held-out rows"):
        check_onnx(other, onnx_bytes)


def test_a_classifier_graph_with_other_labels_is_refused() -> None:
    task = PRESSURE.task("anomaly")
    result = _trained(PRESSURE, task, "xgboost")
    weak = _trained(PRESSURE, task, "xgboost", hyperparameters={"n_estimators": 1, "max_depth": 1})
    with pytest.raises(OnnxMismatchError, match="differ on"):
        check_onnx(result, to_onnx(weak))


def test_tampered_bundle_is_refused(tmp_path: Path) -> None:
    task = PEOPLE.task("income")
    result = _trained(PEOPLE, task, "xgboost")
    onnx_bytes, _ = export(result)
    relative, hashes = _bundle(tmp_path, result, onnx_bytes)
    path = tmp_path / relative / "model.onnx"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match="does not match the registry"):
        ServingModel.load(tmp_path, relative, hashes)


def test_write_bundle_replaces_a_leftover_directory(tmp_path: Path) -> None:
    # A run that crashed after writing its bundle but before registering it
    # leaves v<N>; the next run gets the same version and must not fail.
    task = PEOPLE.task("income")
    result = _trained(PEOPLE, task, "xgboost")
    onnx_bytes, _ = export(result)
    leftover = tmp_path / "people" / "income" / "v1"
    leftover.mkdir(parents=True)
    (leftover / "model.onnx").write_bytes(b"half a bundle")
    relative, hashes = _bundle(tmp_path, result, onnx_bytes)
    assert ServingModel.load(tmp_path, relative, hashes).version == 1
    assert [p.name for p in (tmp_path / "people" / "income").iterdir()] == ["v1"]


def test_a_bundle_rebuilds_the_training_matrix_from_events_categories_included(tmp_path: Path) -> None:
    from shared.ml.dataset import task_data
    from shared.ml.inputs import event_inputs
    from tests.streams import CONSUMPTION

    task = CONSUMPTION.task("consumption")
    rows = synthetic_rows(CONSUMPTION, 300, 5)
    data = task_data(CONSUMPTION, task, rows)
    assert any(column.kind == "category" for column in data.inputs)
    result = fit_rows(CONSUMPTION, task, rows, "random_forest", {"n_estimators": 10}, 0.25, 0)
    onnx_bytes, _ = export(result)
    relative, hashes = _bundle(tmp_path, result, onnx_bytes)
    model = ServingModel.load(tmp_path, relative, hashes)
    rebuilt = model.matrix(event_inputs(rows, model.meta.inputs), len(rows))
    np.testing.assert_array_equal(rebuilt, data.X)
    # A category value the model never saw goes to the "other" column, not to an error.
    rows[0]["categories"]["device_type"] = "sauna"
    other = model.matrix(event_inputs(rows[:1], model.meta.inputs), 1)
    assert other[0, model.meta.features.index("device_type=<other>")] == 1.0
