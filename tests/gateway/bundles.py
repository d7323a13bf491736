"""Real model bundles for the gateway tests, made the way the trainer makes
them (services.trainer.candidate: the task's model and a variant per set of
optional features left out), from synthetic energy data in which carbon
intensity falls as renewables rise; written with shared.ml.bundle and
registered in the real registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import joblib
import numpy as np

from services.trainer.candidate import Candidate, build_candidate, variant_files
from shared.ml import registry
from shared.ml.bundle import BundleMeta, write_bundle
from shared.ml.dataset import task_data
from shared.ml.publish import bundle_meta
from shared.ml.registry import ModelRecord
from shared.streams import TaskKind
from tests.streams import ENERGY

HYPERPARAMETERS = {TaskKind.REGRESSION: {"n_estimators": 20, "max_depth": 6}}


def energy_rows(n: int = 400, seed: int = 0) -> dict[str, np.ndarray]:
    """Energy-mix records in which carbon intensity falls as renewables rise."""
    rng = np.random.default_rng(seed)
    renewables = rng.uniform(0, 100, n)
    nuclear = rng.uniform(0, 100 - renewables)
    fossil = 100 - renewables - nuclear
    carbon = np.clip(900 - 8 * renewables - 3 * nuclear + rng.normal(0, 15, n), 0, 2000)
    return {
        "renewables_share_energy": renewables,
        "fossil_share_energy": fossil,
        "nuclear_share_energy": nuclear,
        "carbon_intensity_elec": carbon,
    }


def energy_events(n: int = 400, seed: int = 0) -> list[dict[str, Any]]:
    """The same records shaped like decoded features events."""
    data = energy_rows(n, seed)
    targets = set(ENERGY.targets)
    return [
        {
            "event_id": f"energy-{seed}-{i}",
            "features": {name: float(values[i]) for name, values in data.items()},
            "targets": {name: float(values[i]) for name, values in data.items() if name in targets},
            "categories": {},
        }
        for i in range(n)
    ]


@dataclass(frozen=True)
class Bundle:
    meta: BundleMeta
    bundle_dir: str
    sha256: dict[str, str]
    size: int
    candidate: Candidate


def build_bundle(artifact_dir: Path, task_name: str, version: int, seed: int = 0, clusters: int = 3) -> Bundle:
    task = ENERGY.task(task_name)
    rows = energy_events(seed=seed)
    params = {"n_clusters": clusters} if task.kind is TaskKind.CLUSTERING else HYPERPARAMETERS[task.kind]
    built = build_candidate(
        task, None, task_data(ENERGY, task, rows), rows, params, 0.2, seed, 20,
        variant_data=lambda reduced: task_data(ENERGY, reduced, rows),
    )
    meta = bundle_meta(ENERGY.name, built.result, version, {"test": "synthetic", "seed": seed},
                       [(v.without, v.result) for v in built.variants])
    holdout = [str(event["event_id"]) for event in built.test_events]
    relative, hashes, size = write_bundle(artifact_dir, meta, built.onnx_bytes,
                                          partial(joblib.dump, built.result.pipeline), holdout, variant_files(built))
    return Bundle(meta, relative, hashes, size, built)


async def register_model(
    pool: asyncpg.Pool, artifact_dir: Path, task_name: str, *, seed: int = 0, activate: bool = True
) -> tuple[ModelRecord, Bundle]:
    version = await registry.next_version(pool, ENERGY.name, task_name)
    bundle = build_bundle(artifact_dir, task_name, version, seed=seed)
    record = await registry.insert_bundle(
        pool, bundle.meta, bundle.bundle_dir, bundle.sha256, bundle.size, activate=activate,
        trigger="test", actor="tests",
    )
    return record, bundle
