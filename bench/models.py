"""A model for every task, so that the pipeline and the gateway score everything.

Trained once per run the way the trainer builds a candidate (its default
hyperparameters, a holdout, a variant per set of optional features left
out: services.trainer.candidate.build_candidate) on generator rows built the
way the normalizer builds features events (bench.datasets), exported to
ONNX, written as bundles into the run's artifact directory, and registered
as the active model in each phase's fresh database.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import joblib

from bench.datasets import synthetic_rows
from services.trainer.candidate import build_candidate, variant_files
from shared.db import create_pool
from shared.ml import registry
from shared.ml.bundle import JOBLIB_FILE, BundleMeta, write_bundle
from shared.ml.dataset import task_data
from shared.ml.publish import bundle_meta
from shared.streams import builtin_streams

VERSION = 1
MIN_ROWS = 10


@dataclass(frozen=True)
class PreparedModel:
    meta: BundleMeta
    bundle_dir: str
    sha256: dict[str, str]
    size_bytes: int

    @property
    def key(self) -> tuple[str, str]:
        return self.meta.stream, self.meta.task

    def joblib_path(self, artifact_dir: Path) -> Path:
        return artifact_dir / self.bundle_dir / JOBLIB_FILE


def prepare_models(artifact_dir: Path, rows: int, seed: int = 3) -> dict[tuple[str, str], PreparedModel]:
    prepared: dict[tuple[str, str], PreparedModel] = {}
    for stream in builtin_streams():
        sample = synthetic_rows(stream.name, rows, seed=seed)
        for task in stream.tasks:
            built = build_candidate(task, None, task_data(stream, task, sample), sample, {}, 0.2, seed, MIN_ROWS,
                                    variant_data=lambda reduced: task_data(stream, reduced, sample))
            variants = [(variant.without, variant.result) for variant in built.variants]
            meta = bundle_meta(stream.name, built.result, VERSION, {"bench": "synthetic", "rows": rows}, variants)
            holdout = [str(event.get("event_id")) for event in built.test_events]
            relative, hashes, size = write_bundle(artifact_dir, meta, built.onnx_bytes,
                                                  partial(joblib.dump, built.result.pipeline), holdout,
                                                  variant_files(built))
            prepared[(stream.name, task.name)] = PreparedModel(meta, relative, hashes, size)
    return prepared


async def register_models(dsn: str, prepared: dict[tuple[str, str], PreparedModel]) -> None:
    """Each prepared bundle as the active model of its task in this database."""
    pool = await create_pool(dsn, max_size=1)
    try:
        for model in prepared.values():
            await registry.insert_bundle(
                pool, model.meta, model.bundle_dir, model.sha256, model.size_bytes, activate=True
            )
    finally:
        await pool.close()
