"""A model for every task, so that the pipeline and the gateway score everything.

Trained once per run with shared.ml (the trainer's own functions and default
hyperparameters: shared.ml.dataset.fit_rows) on generator rows built the way
the normalizer builds features events (bench.datasets), exported to ONNX, written as bundles into the run's artifact directory, and
registered as the active model in each phase's fresh database.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import joblib

from bench.datasets import synthetic_rows
from shared.db import create_pool
from shared.ml import registry
from shared.ml.bundle import JOBLIB_FILE, BundleMeta, write_bundle
from shared.ml.dataset import fit_rows
from shared.ml.export import export
from shared.ml.publish import bundle_meta
from shared.streams import builtin_streams

VERSION = 1


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
            result = fit_rows(stream, task, sample, seed=seed)
            onnx_bytes, _ = export(result)
            meta = bundle_meta(stream.name, result, VERSION, {"bench": "synthetic", "rows": rows})
            relative, hashes, size = write_bundle(artifact_dir, meta, onnx_bytes, partial(joblib.dump, result.pipeline))
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
