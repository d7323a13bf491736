"""The model bundle: everything needed to score raw input, on disk.

A bundle is a directory ``<artifact_dir>/<stream>/<task>/v<version>/`` with
- ``model.onnx``: the training scaler and the estimator as one ONNX graph,
  input ``input`` (float32, the raw features in ``meta.features`` order);
- ``meta.json``: :class:`BundleMeta`;
- ``model.joblib``: the fitted scikit-learn pipeline, for download and
  retraining only. Serving never opens it.
The registry row stores the sha256 of each file; a file is loaded only if it
still hashes to that value.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.ml.drift import FeatureReference
from shared.ml.inputs import InputColumn

ONNX_FILE = "model.onnx"
META_FILE = "meta.json"
JOBLIB_FILE = "model.joblib"
# The event ids of the rows held out from training (the model's test rows):
# what its metrics were measured on, and rows it must never be judged on as
# if unseen by another model trained on them.
HOLDOUT_FILE = "holdout.json"


class VariantMeta(BaseModel):
    """A model of the same task trained without some optional features: it
    answers the requests and events that leave exactly those out."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    without: list[str]
    file: str
    inputs: list[InputColumn]
    features: list[str]
    metrics: dict[str, float] = Field(default_factory=dict)
    rows: int = 0


def variant_file(without: list[str]) -> str:
    return "model.without." + ".".join(sorted(without)) + ".onnx"


class BundleMeta(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    stream: str
    task: str
    kind: str  # a shared.streams.TaskKind value
    algorithm: str
    version: int
    # What the model reads: each input (numbers, or categories one-hot over
    # the listed values), and the matrix columns they expand to.
    inputs: list[InputColumn] = Field(default_factory=list)
    features: list[str]
    target: str | None = None
    # Classification: class labels in index order; a binary task's positive index.
    classes: list[str] | None = None
    positive: int | None = None
    # Training means of each matrix column (descriptive: a record that leaves
    # an optional feature out is answered by a variant, not filled in).
    feature_means: dict[str, float]
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    evaluation: dict[str, Any] = Field(default_factory=dict)
    training_window: dict[str, Any] = Field(default_factory=dict)
    rows: int
    # Clustering: centres in raw feature units, indexed by category number.
    centers: list[list[float]] | None = None
    # Models for requests that leave optional features out (none when the
    # task has no optional feature).
    variants: list[VariantMeta] = Field(default_factory=list)
    # Per input, its bins and the training rows' share in each (shared.ml.drift).
    drift: dict[str, FeatureReference] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # Hashes of model.onnx and model.joblib (meta.json cannot hash itself;
    # its own hash lives in the registry row).
    sha256: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _numeric_inputs_by_default(self) -> BundleMeta:
        # Bundles written before inputs were recorded read numbers only, one
        # per feature.
        if not self.inputs:
            object.__setattr__(self, "inputs", [InputColumn(name=name) for name in self.features])
        return self


class BundleIntegrityError(RuntimeError):
    """A bundle file is missing or no longer matches its registered sha256."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# Names of the directories a bundle write makes beside the bundles, which a
# kill can leave behind (see remove_unfinished); bundles themselves are v<N>.
_STAGING_PREFIX = ".v"
_STALE_PREFIX = ".stale-"


def bundle_relpath(stream: str, task: str, version: int) -> str:
    return f"{stream}/{task}/v{version}"


def write_bundle(
    artifact_dir: Path,
    meta: BundleMeta,
    onnx_bytes: bytes,
    joblib_writer: Any,
    holdout: list[str] | None = None,
    extra: dict[str, bytes] | None = None,
) -> tuple[str, dict[str, str], int]:
    """Write a bundle atomically; returns (relative dir, sha256 per file, total bytes).

    ``joblib_writer(path)`` writes the joblib file (e.g. ``partial(joblib.dump, pipe)``).
    The bundle is assembled in a temporary directory and renamed into place,
    so a reader never sees half a bundle.
    """
    relative = bundle_relpath(meta.stream, meta.task, meta.version)
    final = artifact_dir / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{meta.version}-", dir=final.parent))
    try:
        (staging / ONNX_FILE).write_bytes(onnx_bytes)
        joblib_writer(staging / JOBLIB_FILE)
        hashes = {ONNX_FILE: sha256_file(staging / ONNX_FILE), JOBLIB_FILE: sha256_file(staging / JOBLIB_FILE)}
        if holdout is not None:
            (staging / HOLDOUT_FILE).write_bytes(orjson.dumps({"event_ids": holdout}))
            hashes[HOLDOUT_FILE] = sha256_file(staging / HOLDOUT_FILE)
        for name, content in (extra or {}).items():
            (staging / name).write_bytes(content)
            hashes[name] = sha256_file(staging / name)
        full_meta = meta.model_copy(update={"sha256": hashes})
        (staging / META_FILE).write_bytes(orjson.dumps(full_meta.model_dump(mode="json"), option=orjson.OPT_INDENT_2))
        hashes[META_FILE] = sha256_file(staging / META_FILE)
        size = sum((staging / name).stat().st_size for name in hashes)
        if final.exists():
            # Left by a run that crashed between writing its bundle and
            # registering it (versions come from the registry, so no row
            # points here); os.replace cannot overwrite a non-empty directory.
            _discard(final)
        os.replace(staging, final)
    except BaseException:
        for leftover in staging.glob("*"):
            leftover.unlink()
        staging.rmdir()
        raise
    return relative, hashes, size


def remove_unfinished(artifact_dir: Path, streams: list[str]) -> list[str]:
    """Remove what killed bundle writes of these streams left behind (staging
    directories, stale bundles being discarded); returns their paths relative
    to ``artifact_dir``. Called by a trainer before it writes: only the
    trainer of a stream writes that stream's bundles, so nothing of these
    streams is being written now."""
    removed = []
    for stream in streams:
        for task_dir in _subdirectories(artifact_dir / stream):
            for child in _subdirectories(task_dir):
                if child.name.startswith((_STAGING_PREFIX, _STALE_PREFIX)):
                    shutil.rmtree(child, ignore_errors=True)
                    removed.append(str(child.relative_to(artifact_dir)))
    return removed


def _subdirectories(directory: Path) -> list[Path]:
    try:
        return [child for child in directory.iterdir() if child.is_dir()]
    except FileNotFoundError:
        return []


def _discard(directory: Path) -> None:
    stale = directory.with_name(f"{_STALE_PREFIX}{directory.name}-{os.getpid()}-{os.urandom(4).hex()}")
    os.replace(directory, stale)
    shutil.rmtree(stale, ignore_errors=True)


def _bundle_path(artifact_dir: Path, bundle_dir: str, name: str) -> Path:
    path = (artifact_dir / bundle_dir / name).resolve()
    if not path.is_relative_to(artifact_dir.resolve()):
        raise BundleIntegrityError(f"{bundle_dir}/{name} lies outside the artifact directory")
    if not path.is_file():
        raise BundleIntegrityError(f"{bundle_dir}/{name} is missing")
    return path


def verified_bytes(artifact_dir: Path, bundle_dir: str, name: str, expected_sha256: dict[str, str]) -> bytes:
    """A bundle file's content, read once and checked against the registry hash
    (hashing what was read, so the file cannot change between check and use)."""
    expected = expected_sha256.get(name)
    if expected is None:
        raise BundleIntegrityError(f"no registered sha256 for {bundle_dir}/{name}")
    content = _bundle_path(artifact_dir, bundle_dir, name).read_bytes()
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected:
        raise BundleIntegrityError(
            f"{bundle_dir}/{name}: sha256 {actual[:12]}... does not match the registry's {expected[:12]}..."
        )
    return content


def read_verified_bundle(
    artifact_dir: Path, bundle_dir: str, expected_sha256: dict[str, str]
) -> tuple[BundleMeta, bytes, dict[str, bytes]]:
    """Meta, the ONNX graph and each variant's graph, all checked; never
    touches the joblib file."""
    meta = BundleMeta.model_validate_json(verified_bytes(artifact_dir, bundle_dir, META_FILE, expected_sha256))
    onnx_bytes = verified_bytes(artifact_dir, bundle_dir, ONNX_FILE, expected_sha256)
    variants = {v.file: verified_bytes(artifact_dir, bundle_dir, v.file, expected_sha256) for v in meta.variants}
    return meta, onnx_bytes, variants
