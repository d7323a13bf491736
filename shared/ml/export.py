"""A fitted pipeline as one ONNX graph, checked before it is published.

skl2onnx converts the scikit-learn parts; XGBoost models go through
onnxmltools' converter, registered with skl2onnx here. The graph takes one
input ``input`` (float32, the raw features in the task's order).

Tree models get their StandardScaler as double-precision arithmetic
(Cast, Sub, Div, Cast back to float32) instead of skl2onnx's float32 Scaler
op, which stores the mean rounded to float32: the scaled values then differ
from scikit-learn's by an ulp, and wherever a scaled value sits on a split
threshold (every repeated value of an integer feature does) the row goes
down the other branch. With the double arithmetic the trees see bit for bit
what they saw in training. Smooth models (MLP, KMeans) keep the standard
Scaler op, whose float32 error is far below any tolerance and which other
readers of the graph recognise.

:func:`check_onnx` runs the graph through the serving code path on the
held-out rows and refuses it unless it matches the fitted pipeline.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto
from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx.algebra.onnx_ops import OnnxCast, OnnxDiv, OnnxSub
from skl2onnx.common.data_types import FloatTensorType
from skl2onnx.common.shape_calculator import (
    calculate_linear_classifier_output_shapes,
    calculate_linear_regressor_output_shapes,
)
from skl2onnx.shape_calculators.scaler import calculate_sklearn_scaler_output_shapes
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier, XGBRegressor

from shared.ml.scores import INPUT_NAME, Scores, new_session, run_session
from shared.ml.training import TrainResult
from shared.streams import Algorithm, TaskKind

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
TREE_ALGORITHMS = frozenset({Algorithm.RANDOM_FOREST, Algorithm.XGBOOST})

# float32 tolerances: relative to each value, plus an absolute floor scaled
# to the outputs' magnitude (a tree ensemble sums in float32).
RTOL = 1e-4
ATOL_FRACTION = 1e-5
PROBABILITY_ATOL = 1e-4
# Rows this close to a decision boundary may fall either way in float32.
TIE_TOLERANCE = 1e-4

update_registered_converter(
    XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes, convert_xgboost
)
update_registered_converter(
    XGBClassifier,
    "XGBoostXGBClassifier",
    calculate_linear_classifier_output_shapes,
    convert_xgboost,
    options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
)


class OnnxMismatchError(RuntimeError):
    """The ONNX graph does not reproduce the fitted pipeline: never published."""


def _exact_scaler(scope, operator, container) -> None:  # type: ignore[no-untyped-def]
    scaler: StandardScaler = operator.raw_operator
    opset = container.target_opset
    value = OnnxCast(operator.inputs[0], to=TensorProto.DOUBLE, op_version=opset)
    value = OnnxSub(value, np.asarray(scaler.mean_, dtype=np.float64), op_version=opset)
    value = OnnxDiv(value, np.asarray(scaler.scale_, dtype=np.float64), op_version=opset)
    cast = OnnxCast(value, to=TensorProto.FLOAT, op_version=opset, output_names=[operator.outputs[0].full_name])
    cast.add_to(scope, container)


def to_onnx(result: TrainResult) -> bytes:
    """The fitted pipeline of ``result`` as serialized ONNX."""
    pipeline = result.pipeline
    n_features = len(result.feature_names)
    options = {id(pipeline): {"zipmap": False}} if result.kind is TaskKind.CLASSIFICATION else None
    custom: dict = {}
    if result.algorithm in TREE_ALGORITHMS:
        custom = {
            "custom_conversion_functions": {StandardScaler: _exact_scaler},
            "custom_shape_calculators": {StandardScaler: calculate_sklearn_scaler_output_shapes},
        }
    model = convert_sklearn(
        pipeline,
        name=f"{result.task.name}-{result.algorithm.value}",
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        options=options,
        target_opset=TARGET_OPSET,
        **custom,
    )
    return model.SerializeToString()


def reference_scores(result: TrainResult, X: np.ndarray) -> Scores:
    """What the fitted pipeline says about ``X``, in serving's shape."""
    pipeline = result.pipeline
    if result.kind is TaskKind.REGRESSION:
        return Scores(np.asarray(pipeline.predict(X), dtype=np.float64).reshape(-1), None)
    if result.kind is TaskKind.CLASSIFICATION:
        probabilities = pipeline.predict_proba(X)
        score = probabilities[:, result.positive] if result.positive is not None else probabilities.max(axis=1)
        return Scores(pipeline.predict(X).astype(np.float64), score, probabilities)
    return Scores(pipeline.predict(X).astype(np.float64), pipeline.transform(X).min(axis=1))


def _label_ties(result: TrainResult, X: np.ndarray) -> np.ndarray:
    """Rows whose label may legitimately differ between float32 and float64."""
    if result.kind is TaskKind.CLASSIFICATION:
        top = np.sort(result.pipeline.predict_proba(X), axis=1)
        return top[:, -1] - top[:, -2] <= TIE_TOLERANCE
    distances = np.sort(result.pipeline.transform(X), axis=1)
    return distances[:, 1] - distances[:, 0] <= TIE_TOLERANCE * (1.0 + distances[:, 0])


def compare(result: TrainResult, onnx_scores: Scores, X: np.ndarray) -> str | None:
    """None if the graph's scores match the pipeline's on ``X``, else why not."""
    expected = reference_scores(result, X)
    rows = len(X)
    if result.kind is TaskKind.REGRESSION:
        atol = ATOL_FRACTION * (float(np.abs(expected.prediction).max(initial=0.0)) + 1.0)
        close = np.isclose(onnx_scores.prediction, expected.prediction, rtol=RTOL, atol=atol)
        if not close.all():
            worst = float(np.abs(onnx_scores.prediction - expected.prediction).max())
            return f"predictions differ on {int((~close).sum())} of {rows} held-out rows (max abs diff {worst:.6g})"
        return None
    assert onnx_scores.score is not None and expected.score is not None
    same_label = (onnx_scores.prediction == expected.prediction) | _label_ties(result, X)
    if not same_label.all():
        return f"labels differ on {int((~same_label).sum())} of {rows} held-out rows"
    if result.kind is TaskKind.CLASSIFICATION:
        assert onnx_scores.probabilities is not None and expected.probabilities is not None
        close = np.isclose(onnx_scores.probabilities, expected.probabilities, rtol=0.0, atol=PROBABILITY_ATOL).all(axis=1)
    else:
        agree = onnx_scores.prediction == expected.prediction
        close = ~agree | np.isclose(onnx_scores.score, expected.score, rtol=1e-3, atol=TIE_TOLERANCE)
    if not close.all():
        worst = float(np.abs(onnx_scores.score - expected.score).max())
        return f"scores differ on {int((~close).sum())} of {rows} held-out rows (max abs diff {worst:.6g})"
    return None


def check_onnx(result: TrainResult, onnx_bytes: bytes) -> Scores:
    """Score the held-out rows through the serving path; raise
    :class:`OnnxMismatchError` unless they match the pipeline. Returns the
    graph's scores (the candidate's held-out predictions)."""
    session = new_session(onnx_bytes)
    scores = run_session(session, result.kind.value, result.X_test, positive=result.positive)
    problem = compare(result, scores, result.X_test)
    if problem is not None:
        raise OnnxMismatchError(f"ONNX export of {result.task.name} ({result.algorithm.value}) refused: {problem}")
    return scores


def export(result: TrainResult) -> tuple[bytes, Scores]:
    """Convert and check; returns the graph and its held-out scores."""
    onnx_bytes = to_onnx(result)
    return onnx_bytes, check_onnx(result, onnx_bytes)
