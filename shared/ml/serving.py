"""A registry model ready to score: its verified bundle, its ONNX session,
and the matrix its inputs make (shared.ml.inputs).

Clustering models answer through a numpy nearest-centre fast path when it
agrees with the graph (shared.ml.kmeans); everything else runs the graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import structlog

from shared.ml.bundle import BundleMeta, read_verified_bundle
from shared.ml.inputs import build_matrix
from shared.ml.kmeans import NearestCentre
from shared.ml.scores import Scores, new_session, run_session

log = structlog.get_logger(__name__)


class MissingInput(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"{name}: missing")
        self.name = name


class ServingModel:
    """A verified bundle ready to score; build with :meth:`load` or the constructor."""

    def __init__(self, meta: BundleMeta, onnx_bytes: bytes, model_id: int | None = None) -> None:
        self.meta = meta
        self.model_id = model_id
        self.session = new_session(onnx_bytes)
        self._output_names = [output.name for output in self.session.get_outputs()]
        self._means = np.array([meta.feature_means.get(f, np.nan) for f in meta.features], dtype=np.float64)
        self.nearest = self._fast_path(onnx_bytes) if meta.kind == "clustering" and meta.centers else None

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

    def matrix(self, values: dict[str, object], rows: int, optional: tuple[str, ...] = ()) -> np.ndarray:
        """Input columns (numbers as float arrays with NaN where absent,
        categories as lists of labels) as the model's float64 matrix; absent
        optional numeric inputs take their training mean. Rows still holding
        NaN lack a required input (see :func:`missing_inputs`)."""
        matrix = build_matrix(self.meta.inputs, values, rows)
        if optional:
            for j, name in enumerate(self.meta.features):
                if name in optional:
                    column = matrix[:, j]
                    column[np.isnan(column)] = self._means[j]
        return matrix

    def row(self, values: dict[str, float], optional: tuple[str, ...] = ()) -> np.ndarray:
        """One record of a model whose inputs are all numbers, as a (1, n)
        matrix: the single-row fast path (no numpy per column)."""
        matrix = np.empty((1, len(self.meta.features)), dtype=np.float64)
        for j, name in enumerate(self.meta.features):
            value = values.get(name)
            if value is None:
                if name not in optional or np.isnan(self._means[j]):
                    raise MissingInput(name)
                value = self._means[j]
            matrix[0, j] = value
        return matrix

    @property
    def numeric_only(self) -> bool:
        return all(column.kind == "number" for column in self.meta.inputs)

    def missing_inputs(self, matrix: np.ndarray) -> dict[int, str]:
        """Row -> the first input it lacks, for rows that cannot be scored."""
        missing: dict[int, str] = {}
        bad = ~np.isfinite(matrix)
        for i in np.flatnonzero(bad.any(axis=1)).tolist():
            column = self.meta.features[int(np.flatnonzero(bad[i])[0])]
            missing[i] = column.split("=", 1)[0]
        return missing

    def score(self, matrix: np.ndarray) -> Scores:
        if self.nearest is not None:
            return self.nearest.score(matrix)
        return self.score_onnx(matrix)

    def score_onnx(self, matrix: np.ndarray) -> Scores:
        return run_session(self.session, self.meta.kind, matrix, self._output_names, self.meta.positive)

    def _fast_path(self, onnx_bytes: bytes) -> NearestCentre | None:
        assert self.meta.centers is not None
        try:
            nearest = NearestCentre.build(onnx_bytes, self.meta.centers, len(self.meta.features))
            if nearest.agrees_with(self.score_onnx, self.meta.centers):
                return nearest
        except (ValueError, IndexError) as error:
            log.warning("kmeans_fast_path_unavailable", model_id=self.model_id, error=str(error))
            return None
        log.warning("kmeans_fast_path_disagrees_with_onnx", model_id=self.model_id, stream=self.meta.stream)
        return None

    def labels(self, prediction: np.ndarray) -> list[str] | None:
        """Class labels of predicted class indices (None unless classification)."""
        classes = self.meta.classes
        if classes is None:
            return None
        return [classes[int(i)] for i in prediction.tolist()]


