"""Scoring raw feature rows with a bundle's ONNX graph.

One ONNX Runtime session per bundle, one intra-op thread: on a small
machine shared with the broker, threads only contend. Outputs are turned
into one shape for every task kind: ``prediction`` (value, class or
category) and ``score`` (probability of the positive class, or distance to
the nearest centre; None for regression).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from shared.ml.bundle import BundleMeta, read_verified_bundle

INPUT_NAME = "input"


@dataclass(frozen=True)
class Scores:
    prediction: np.ndarray
    score: np.ndarray | None


class MissingFeature(ValueError):
    def __init__(self, feature: str) -> None:
        super().__init__(f"{feature}: missing")
        self.feature = feature


def session_options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class ServingModel:
    """A verified bundle ready to score; build with :meth:`load` or :meth:`from_bytes`."""

    def __init__(self, meta: BundleMeta, onnx_bytes: bytes, model_id: int | None = None) -> None:
        self.meta = meta
        self.model_id = model_id
        self.session = new_session(onnx_bytes)
        self._output_names = [output.name for output in self.session.get_outputs()]
        self._means = np.array([meta.feature_means.get(f, 0.0) for f in meta.features], dtype=np.float32)

    @classmethod
    def load(cls, artifact_dir: Path, bundle_dir: str, sha256: dict[str, str], model_id: int | None = None) -> ServingModel:
        meta, onnx_bytes = read_verified_bundle(artifact_dir, bundle_dir, sha256)
        return cls(meta, onnx_bytes, model_id)

    @property
    def version(self) -> int:
        return self.meta.version

    @property
    def features(self) -> list[str]:
        return self.meta.features

    def matrix(self, rows: list[dict[str, float]], optional: tuple[str, ...] = ()) -> np.ndarray:
        """Rows of feature dicts as a float32 matrix in the bundle's order.

        A feature named in ``optional`` and absent from a row takes its
        training mean; any other absent feature raises :class:`MissingFeature`.
        """
        matrix = np.empty((len(rows), len(self.meta.features)), dtype=np.float32)
        for j, feature in enumerate(self.meta.features):
            fill = self._means[j] if feature in optional else None
            for i, row in enumerate(rows):
                value = row.get(feature)
                if value is None:
                    if fill is None:
                        raise MissingFeature(feature)
                    value = fill
                matrix[i, j] = value
        return matrix

    def score(self, matrix: np.ndarray) -> Scores:
        return run_session(self.session, self.meta.kind, matrix, self._output_names)


def run_session(
    session: ort.InferenceSession, kind: str, matrix: np.ndarray, output_names: list[str] | None = None
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
        # probabilities of (normal, anomaly): the score is P(anomaly)
        return Scores(labels, second[:, -1])
    # clustering: the second output is the Euclidean distance to every centre
    # in the scaler's space (what KMeans.transform gives on scaled input).
    # A point on a centre can come out NaN: float32 cancellation leaves a
    # tiny negative square under the graph's square root. Its distance is 0.
    return Scores(labels, np.nan_to_num(second, nan=0.0).min(axis=1))


def new_session(onnx_bytes: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(onnx_bytes, sess_options=session_options(), providers=["CPUExecutionProvider"])
