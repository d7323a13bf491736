"""Real model bundles for the gateway tests, made the way the trainer makes them.

A tiny scikit-learn pipeline (StandardScaler + estimator) trained on synthetic
energy data, converted with skl2onnx, written with shared.ml.bundle and
registered in the real registry; ModelPublished goes on the real models topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import asyncpg
import joblib
import numpy as np
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.cluster import KMeans
from sklearn.ensemble import RandomForestRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from shared.ml import registry
from shared.ml.bundle import BundleMeta, write_bundle
from shared.ml.registry import ModelRecord
from shared.streams import TaskKind
from tests.streams import ENERGY

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


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


@dataclass(frozen=True)
class Bundle:
    meta: BundleMeta
    bundle_dir: str
    sha256: dict[str, str]
    size: int
    pipeline: Pipeline


def _onnx(pipeline: Pipeline, n_features: int) -> bytes:
    model = convert_sklearn(
        pipeline, initial_types=[("input", FloatTensorType([None, n_features]))], target_opset=TARGET_OPSET
    )
    return model.SerializeToString()


def build_bundle(artifact_dir: Path, task_name: str, version: int, seed: int = 0, clusters: int = 3) -> Bundle:
    task = ENERGY.task(task_name)
    data = energy_rows(seed=seed)
    features = list(task.features)
    x = np.column_stack([data[f] for f in features]).astype(np.float32)
    centers = None
    if task.kind is TaskKind.CLUSTERING:
        pipeline = Pipeline([("scaler", StandardScaler()), ("model", KMeans(clusters, n_init=3, random_state=seed))])
        pipeline.fit(x)
        kmeans = pipeline.named_steps["model"]
        raw = pipeline.named_steps["scaler"].inverse_transform(kmeans.cluster_centers_)
        # Categories are numbered by rising carbon intensity: reorder the
        # centres so that KMeans' own label is the category.
        order = np.argsort(raw[:, features.index("carbon_intensity_elec")])
        kmeans.cluster_centers_ = kmeans.cluster_centers_[order]
        centers = raw[order].tolist()
        metrics = {"inertia": float(kmeans.inertia_)}
    else:
        assert task.target is not None
        y = data[task.target]
        pipeline = Pipeline(
            [("scaler", StandardScaler()), ("model", RandomForestRegressor(20, max_depth=6, random_state=seed))]
        )
        pipeline.fit(x, y)
        metrics = {"r2": float(pipeline.score(x, y))}
    meta = BundleMeta(
        stream=ENERGY.name,
        task=task.name,
        kind=task.kind.value,
        algorithm=task.default.value,
        version=version,
        features=features,
        target=task.target,
        feature_means={f: float(data[f].mean()) for f in features},
        metrics=metrics,
        training_window={"test": "synthetic", "seed": seed},
        rows=len(x),
        centers=centers,
    )
    onnx_bytes = _onnx(pipeline, len(features))
    relative, hashes, size = write_bundle(artifact_dir, meta, onnx_bytes, partial(joblib.dump, pipeline))
    return Bundle(meta, relative, hashes, size, pipeline)


async def register_model(
    pool: asyncpg.Pool, artifact_dir: Path, task_name: str, *, seed: int = 0, activate: bool = True
) -> tuple[ModelRecord, Bundle]:
    version = await registry.next_version(pool, ENERGY.name, task_name)
    bundle = build_bundle(artifact_dir, task_name, version, seed=seed)
    record = await registry.insert_bundle(
        pool, bundle.meta, bundle.bundle_dir, bundle.sha256, bundle.size, activate=activate
    )
    return record, bundle
