"""Trained models, bundles and registry rows for tests, from synthetic rows."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import joblib

from shared.ml import registry
from shared.ml.bundle import write_bundle
from shared.ml.dataset import fit_rows
from shared.ml.export import export
from shared.ml.publish import bundle_meta
from shared.ml.registry import ModelRecord
from shared.ml.serving import ServingModel
from shared.ml.training import TrainResult
from shared.streams import StreamSpec
from tests.ml.synthetic import synthetic_rows

SMALL = {"random_forest": {"n_estimators": 10}, "xgboost": {"n_estimators": 20}, "xgboost": {"n_estimators": 20}}


def trained(stream: StreamSpec, task: str, algorithm: str | None = None, *, n: int = 400, seed: int = 0,
            hyperparameters: dict[str, Any] | None = None) -> TrainResult:
    spec = stream.task(task)
    chosen = algorithm or spec.default.value
    params = hyperparameters if hyperparameters is not None else SMALL.get(chosen, {})
    return fit_rows(stream, spec, synthetic_rows(stream, n, seed), chosen, params, 0.2, seed)


def serving_model(stream: StreamSpec, task: str, algorithm: str | None = None, *, version: int = 1,
                  model_id: int = 1, **kwargs: Any) -> ServingModel:
    result = trained(stream, task, algorithm, **kwargs)
    onnx_bytes, _ = export(result)
    return ServingModel(bundle_meta(stream.name, result, version, {}), onnx_bytes, model_id)


async def register(pool: Any, artifact_dir: Path, stream: StreamSpec, task: str, algorithm: str | None = None,
                   *, activate: bool = True, **kwargs: Any) -> ModelRecord:
    """Train, write a bundle and insert its registry row (next version)."""
    result = trained(stream, task, algorithm, **kwargs)
    onnx_bytes, _ = export(result)
    version = await registry.next_version(pool, stream.name, task)
    meta = bundle_meta(stream.name, result, version, {})
    relative, hashes, size = write_bundle(artifact_dir, meta, onnx_bytes, partial(joblib.dump, result.pipeline))
    return await registry.insert_bundle(pool, meta, relative, hashes, size, activate=activate)
