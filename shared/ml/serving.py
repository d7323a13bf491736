"""A registry model ready to score: its verified bundle, its ONNX graphs,
and the matrix its inputs make (shared.ml.inputs).

A bundle holds the task's model and, when the task declares optional
features, a *variant* per set of them left out, trained alongside on the
same rows without those inputs. A record that leaves optional features out
is answered by the variant that never needed them, not by filling them in:
an answer always comes from a model whose inputs are all real values.

Clustering models answer through a numpy nearest-centre fast path when it
agrees with the graph (shared.ml.kmeans); everything else runs the graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import structlog

from shared.ml.bundle import BundleMeta, read_verified_bundle
from shared.ml.inputs import InputColumn, build_matrix
from shared.ml.kmeans import NearestCentre
from shared.ml.scores import Scores, new_session, run_session

log = structlog.get_logger(__name__)


class MissingInput(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"{name}: missing")
        self.name = name


class Variant:
    """One graph of a bundle: the inputs it reads and its session."""

    def __init__(self, meta: BundleMeta, without: frozenset[str], inputs: list[InputColumn], features: list[str],
                 onnx_bytes: bytes) -> None:
        self.meta = meta
        self.without = without
        self.inputs = inputs
        self.features = features
        self.session: ort.InferenceSession = new_session(onnx_bytes)
        self._output_names = [output.name for output in self.session.get_outputs()]
        self.nearest: NearestCentre | None = None
        if meta.kind == "clustering" and meta.centers and not without:
            self.nearest = self._fast_path(onnx_bytes)

    def matrix(self, values: Mapping[str, Any], rows: int) -> np.ndarray:
        return build_matrix(self.inputs, values, rows)

    def row(self, values: Mapping[str, float]) -> np.ndarray:
        """One record of numeric inputs as a (1, n) matrix, without numpy per column."""
        matrix = np.empty((1, len(self.features)), dtype=np.float64)
        for j, name in enumerate(self.features):
            value = values.get(name)
            if value is None:
                raise MissingInput(name)
            matrix[0, j] = value
        return matrix

    def score(self, matrix: np.ndarray) -> Scores:
        if self.nearest is not None:
            return self.nearest.score(matrix)
        return self.score_onnx(matrix)

    def score_onnx(self, matrix: np.ndarray) -> Scores:
        return run_session(self.session, self.meta.kind, matrix, self._output_names, self.meta.positive)

    def _fast_path(self, onnx_bytes: bytes) -> NearestCentre | None:
        assert self.meta.centers is not None
        try:
            nearest = NearestCentre.build(onnx_bytes, self.meta.centers, len(self.features))
            if nearest.agrees_with(self.score_onnx, self.meta.centers):
                return nearest
        except (ValueError, IndexError) as error:
            log.warning("kmeans_fast_path_unavailable", stream=self.meta.stream, error=str(error))
            return None
        log.warning("kmeans_fast_path_disagrees_with_onnx", stream=self.meta.stream, task=self.meta.task)
        return None


@dataclass(frozen=True)
class Predicted:
    """Scores of the rows that could be scored, and why the others could not."""

    rows: np.ndarray  # indices of the scored rows, rising
    prediction: np.ndarray
    score: np.ndarray | None
    probabilities: np.ndarray | None
    missing: dict[int, str]  # row -> the first required input it lacks
    complete: np.ndarray  # the main model's matrix of the rows that had every input (for drift)


class ServingModel:
    """A verified bundle ready to score; build with :meth:`load` or the constructor."""

    def __init__(self, meta: BundleMeta, onnx_bytes: bytes, model_id: int | None = None,
                 variants: Mapping[str, bytes] | None = None) -> None:
        self.meta = meta
        self.model_id = model_id
        self.main = Variant(meta, frozenset(), meta.inputs, meta.features, onnx_bytes)
        self.variants: dict[frozenset[str], Variant] = {frozenset(): self.main}
        for variant in meta.variants:
            graph = (variants or {}).get(variant.file)
            if graph is None:
                raise ValueError(f"bundle {meta.stream}/{meta.task} v{meta.version} lacks its variant {variant.file}")
            without = frozenset(variant.without)
            self.variants[without] = Variant(meta, without, variant.inputs, variant.features, graph)

    @classmethod
    def load(cls, artifact_dir: Path, bundle_dir: str, sha256: dict[str, str], model_id: int | None = None) -> ServingModel:
        meta, onnx_bytes, variants = read_verified_bundle(artifact_dir, bundle_dir, sha256)
        return cls(meta, onnx_bytes, model_id, variants)

    @property
    def version(self) -> int:
        return self.meta.version

    @property
    def features(self) -> list[str]:
        return self.meta.features

    @property
    def nearest(self) -> NearestCentre | None:
        return self.main.nearest

    @property
    def numeric_only(self) -> bool:
        return all(column.kind == "number" for column in self.meta.inputs)

    def variant_for(self, absent: frozenset[str]) -> Variant | None:
        """The model for records lacking the optional inputs ``absent``: the
        variant trained without exactly those, else the smallest one trained
        without more of them; None when no variant can answer."""
        found = self.variants.get(absent)
        if found is not None:
            return found
        candidates = [v for without, v in self.variants.items() if absent <= without]
        return min(candidates, key=lambda v: len(v.without)) if candidates else None

    def matrix(self, values: Mapping[str, Any], rows: int) -> np.ndarray:
        """The main model's float64 matrix (NaN where an input is absent)."""
        return self.main.matrix(values, rows)

    def score(self, matrix: np.ndarray) -> Scores:
        """The main model's scores of a complete matrix."""
        return self.main.score(matrix)

    def score_onnx(self, matrix: np.ndarray) -> Scores:
        return self.main.score_onnx(matrix)

    def row(self, values: Mapping[str, float], optional: tuple[str, ...] = ()) -> tuple[Variant, np.ndarray]:
        """One record of numeric inputs: the variant that answers it and its row."""
        absent = frozenset(name for name in optional if values.get(name) is None)
        variant = self.variant_for(absent)
        if variant is None:
            raise MissingInput(sorted(absent)[0])
        return variant, variant.row(values)

    def predict(self, values: Mapping[str, Any], rows: int, optional: tuple[str, ...] = ()) -> Predicted:
        """Score every row that has the inputs some model of the bundle needs;
        rows are grouped by which optional inputs they leave out, each group
        answered by its variant."""
        matrix = self.main.matrix(values, rows)
        bad = ~np.isfinite(matrix)
        if not bad.any():  # the common case: every input there
            scores = self.main.score(matrix)
            return Predicted(np.arange(rows), scores.prediction, scores.score, scores.probabilities, {}, matrix)
        columns_of = _columns_of(self.meta.inputs)
        absent_by_input = {name: bad[:, cols].any(axis=1) for name, cols in columns_of.items()}
        groups: dict[frozenset[str], list[int]] = {}
        missing: dict[int, str] = {}
        for i in range(rows):
            absent = frozenset(name for name, flags in absent_by_input.items() if flags[i])
            required = absent - set(optional)
            if required:
                missing[i] = next(name for name in columns_of if name in required)
                continue
            groups.setdefault(absent, []).append(i)
        parts: list[tuple[np.ndarray, Scores]] = []
        for absent, indices in groups.items():
            variant = self.variant_for(absent)
            index = np.asarray(indices)
            if variant is None:
                for i in indices:
                    missing[i] = sorted(absent)[0]
                continue
            subset = {name: _pick(column, index) for name, column in values.items()}
            parts.append((index, variant.score(variant.matrix(subset, len(index)))))
        return _merge(parts, missing, matrix[~bad.any(axis=1)])

    def labels(self, prediction: np.ndarray) -> list[str] | None:
        """Class labels of predicted class indices (None unless classification)."""
        classes = self.meta.classes
        if classes is None:
            return None
        return [classes[int(i)] for i in prediction.tolist()]


def _columns_of(inputs: list[InputColumn]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    at = 0
    for column in inputs:
        out[column.name] = list(range(at, at + column.width))
        at += column.width
    return out


def _pick(column: Any, index: np.ndarray) -> Any:
    if isinstance(column, np.ndarray):
        return column[index]
    return [column[i] for i in index.tolist()]


def _merge(parts: list[tuple[np.ndarray, Scores]], missing: dict[int, str], complete: np.ndarray) -> Predicted:
    if not parts:
        empty = np.empty(0)
        return Predicted(np.empty(0, dtype=np.int64), empty, None, None, missing, complete)
    order = np.argsort(np.concatenate([index for index, _ in parts]), kind="stable")
    rows = np.concatenate([index for index, _ in parts])[order]
    prediction = np.concatenate([s.prediction for _, s in parts])[order]
    score = None if parts[0][1].score is None else np.concatenate([s.score for _, s in parts])[order]  # type: ignore[misc]
    probabilities = None
    if parts[0][1].probabilities is not None:
        probabilities = np.concatenate([s.probabilities for _, s in parts])[order]  # type: ignore[misc]
    return Predicted(rows, prediction, score, probabilities, missing, complete)
