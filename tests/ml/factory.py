"""Trained models, bundles and registry rows for tests, from synthetic rows,
built the way the trainer builds them (shared.ml + services.trainer.candidate):
a candidate with a variant per set of optional features left out."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import joblib

from services.trainer.candidate import Candidate, build_candidate, variant_files
from shared.ml import registry
from shared.ml.bundle import write_bundle
from shared.ml.dataset import task_data
from shared.ml.publish import bundle_meta
from shared.ml.registry import ModelRecord
from shared.ml.serving import ServingModel
from shared.ml.training import TrainResult
from shared.streams import StreamSpec
from tests.ml.synthetic import synthetic_rows

SMALL = {"random_forest": {"n_estimators": 10}, "xgboost": {"n_estimators": 20}}


def candidate(stream: StreamSpec, task: str, algorithm: str | None = None, *, n: int = 400, seed: int = 0,
              hyperparameters: dict[str, Any] | None = None) -> Candidate:
    spec = stream.task(task)
    chosen = algorithm or spec.default.value
    params = hyperparameters if hyperparameters is not None else SMALL.get(chosen, {})
    rows = synthetic_rows(stream, n, seed)
    return build_candidate(
        spec, chosen, task_data(stream, spec, rows), rows, params, 0.2, seed, 10,
        variant_data=lambda reduced: task_data(stream, reduced, rows),
    )


def trained(stream: StreamSpec, task: str, algorithm: str | None = None, **kwargs: Any) -> TrainResult:
    return candidate(stream, task, algorithm, **kwargs).result


def _meta(stream: StreamSpec, built: Candidate, version: int) -> Any:
    return bundle_meta(stream.name, built.result, version, {}, [(v.without, v.result) for v in built.variants])


def serving_model(stream: StreamSpec, task: str, algorithm: str | None = None, *, version: int = 1,
                  model_id: int = 1, **kwargs: Any) -> ServingModel:
    built = candidate(stream, task, algorithm, **kwargs)
    return ServingModel(_meta(stream, built, version), built.onnx_bytes, model_id, variant_files(built))


async def register(pool: Any, artifact_dir: Path, stream: StreamSpec, task: str, algorithm: str | None = None,
                   *, activate: bool = True, shadow: bool = False, **kwargs: Any) -> ModelRecord:
    """Train, write a bundle and insert its registry row (next version)."""
    built = candidate(stream, task, algorithm, **kwargs)
    version = await registry.next_version(pool, stream.name, task)
    meta = _meta(stream, built, version)
    holdout = [str(event.get("event_id")) for event in built.test_events]
    relative, hashes, size = write_bundle(artifact_dir, meta, built.onnx_bytes,
                                          partial(joblib.dump, built.result.pipeline), holdout, variant_files(built))
    return await registry.insert_bundle(pool, meta, relative, hashes, size, activate=activate, shadow=shadow,
                                        trigger="test", actor="tests")
