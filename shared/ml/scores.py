"""ONNX Runtime sessions and the one shape their outputs are read into.

One ONNX Runtime session per bundle, one intra-op thread: on a small
machine shared with the broker, threads only contend. Outputs are turned
into one shape for every task kind: ``prediction`` (value, class index or
category), ``score`` (probability of the positive class of a binary task,
of the predicted class otherwise, or distance to the nearest centre; None
for regression) and, for classification, every class's probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

INPUT_NAME = "input"


@dataclass(frozen=True)
class Scores:
    prediction: np.ndarray
    score: np.ndarray | None
    probabilities: np.ndarray | None = None  # (rows, classes), classification only


def session_options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def run_session(
    session: ort.InferenceSession,
    kind: str,
    matrix: np.ndarray,
    output_names: list[str] | None = None,
    positive: int | None = None,
) -> Scores:
    """Score ``matrix`` with an exported graph and read its outputs as ``kind``
    (a TaskKind value). The trainer checks a new graph through this same
    function, so what it verifies is exactly what serving computes."""
    names = output_names or [output.name for output in session.get_outputs()]
    outputs = session.run(names, {INPUT_NAME: np.ascontiguousarray(matrix, dtype=np.float32)})
    if kind == "regression":
        return Scores(np.asarray(outputs[0], dtype=np.float64).reshape(-1), None)
    labels = np.asarray(outputs[0]).reshape(-1).astype(np.float64)
    second = np.asarray(outputs[1], dtype=np.float64)
    if kind == "classification":
        # a binary task's score is the positive class's probability; with
        # several classes, the predicted class's
        score = second[:, positive] if positive is not None else second.max(axis=1)
        return Scores(labels, score, second)
    # clustering: the second output is the Euclidean distance to every centre
    # in the scaler's space (what KMeans.transform gives on scaled input).
    # A point on a centre can come out NaN: float32 cancellation leaves a
    # tiny negative square under the graph's square root. Its distance is 0.
    return Scores(labels, np.nan_to_num(second, nan=0.0).min(axis=1))


def new_session(onnx_bytes: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(onnx_bytes, sess_options=session_options(), providers=["CPUExecutionProvider"])
