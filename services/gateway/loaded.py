"""A registry model ready to answer requests: its ONNX session, its task,
the numpy fast path for clustering, and the request-to-matrix conversion."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import structlog

from services.gateway.features import RequestSchema
from services.gateway.kmeans import NearestCentre
from shared.ml.bundle import read_verified_bundle
from shared.ml.registry import ModelRecord
from shared.ml.serving import MissingFeature, Scores, ServingModel
from shared.streams import TaskKind, get_stream

log = structlog.get_logger(__name__)


@dataclass
class LoadedModel:
    record: ModelRecord
    serving: ServingModel
    schema: RequestSchema
    nearest: NearestCentre | None = None
    centres: list[dict[str, float]] | None = None
    _means: np.ndarray = field(init=False)
    _optional: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        features = self.serving.features
        self._means = np.array([self.serving.meta.feature_means.get(f, np.nan) for f in features])
        self._optional = frozenset(self.schema.task.optional_features)

    @property
    def model_id(self) -> int:
        return self.record.id

    @property
    def version(self) -> int:
        return self.serving.version

    @property
    def features(self) -> list[str]:
        return self.serving.features

    def row(self, values: dict[str, float]) -> np.ndarray:
        """One checked record as a (1, n) matrix in the bundle's feature order;
        absent optional features take their training mean."""
        matrix = np.empty((1, len(self.features)), dtype=np.float64)
        for j, name in enumerate(self.features):
            value = values.get(name)
            if value is None:
                if name not in self._optional or np.isnan(self._means[j]):
                    raise MissingFeature(name)
                value = self._means[j]
            matrix[0, j] = value
        return matrix

    def matrix(self, columns: dict[str, np.ndarray], rows: int) -> np.ndarray:
        """Checked columns (NaN where an optional feature is absent) as a matrix."""
        matrix = np.empty((rows, len(self.features)), dtype=np.float64)
        for j, name in enumerate(self.features):
            column = columns.get(name)
            if column is None:
                if name not in self._optional:
                    raise MissingFeature(name)
                column = np.full(rows, np.nan)
            matrix[:, j] = np.where(np.isnan(column), self._means[j], column)
        if np.isnan(matrix).any():
            missing = self.features[int(np.flatnonzero(np.isnan(matrix).any(axis=0))[0])]
            raise MissingFeature(missing)
        return matrix

    def score(self, matrix: np.ndarray) -> Scores:
        if self.nearest is not None:
            return self.nearest.score(matrix)
        return self.serving.score(matrix.astype(np.float32))


def load_model(artifact_dir: Path, record: ModelRecord) -> LoadedModel:
    """Read and verify a registry model's bundle (sha256 checked, nothing unpickled)."""
    stream = get_stream(record.stream)
    task = stream.task(record.task)
    meta, onnx_bytes = read_verified_bundle(artifact_dir, record.bundle_dir, record.sha256)
    serving = ServingModel(meta, onnx_bytes, record.id)
    model = LoadedModel(record=record, serving=serving, schema=RequestSchema.of(stream, task))
    if meta.centers is not None:
        model.centres = [dict(zip(meta.features, map(float, centre), strict=True)) for centre in meta.centers]
    if task.kind is TaskKind.CLUSTERING and meta.centers:
        model.nearest = _fast_path(serving, onnx_bytes, meta.centers, record)
    return model


def _fast_path(
    serving: ServingModel, onnx_bytes: bytes, centres: list[list[float]], record: ModelRecord
) -> NearestCentre | None:
    try:
        nearest = NearestCentre.build(onnx_bytes, centres, len(serving.features))
        if nearest.agrees_with(serving, centres):
            return nearest
    except (ValueError, IndexError) as error:
        log.warning("kmeans_fast_path_unavailable", model_id=record.id, error=str(error))
        return None
    log.warning("kmeans_fast_path_disagrees_with_onnx", model_id=record.id, stream=record.stream, task=record.task)
    return None
