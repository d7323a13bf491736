"""Training rows from the data lake: an export id, an s3:// URL or a local
path (see shared.lake.read), bounded like dataset training (at most
TRAIN_DATASET_MAX_ROWS rows, TRAIN_DATASET_SCAN_TIMEOUT seconds). Where the
rows came from goes into the model's training window in the registry."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from shared.lake import manifest
from shared.lake.destination import ObjectStoreSettings, open_destination
from shared.lake.layout import FEATURES
from shared.lake.addresses import LakeSourceError, check_address, is_export_id
from shared.lake.read import LakeFiles, address_files, read_rows
from shared.ml.training import NotEnoughData, TrainingError


async def _files(pool: asyncpg.Pool, store: ObjectStoreSettings, source: str, stream: str) -> LakeFiles:
    if not is_export_id(source):
        return await asyncio.to_thread(address_files, check_address(source), stream, store)
    destination, paths = await manifest.export_files(pool, source, stream, FEATURES)
    if destination is None:
        raise LakeSourceError(f"no export {source}")
    if not paths:
        raise NotEnoughData(f"export {source} committed no features files of stream {stream!r}")
    lake = open_destination(destination, store)
    return LakeFiles(lake, [lake.path(path) for path in paths])


async def lake_rows(pool: asyncpg.Pool, store: ObjectStoreSettings, source: str, stream: str, *, max_rows: int,
                    timeout: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(features-event dicts, where they came from); a source that cannot be
    read raises TrainingError with the reason (the run fails with it)."""
    try:
        files = await _files(pool, store, source, stream)
        rows, read = await asyncio.to_thread(read_rows, files, max_rows, timeout)
    except (LakeSourceError, OSError) as error:
        raise TrainingError(f"training source {source[:200]}: {error}") from None
    if not rows:
        raise NotEnoughData(f"no rows in the features files of {source[:200]}")
    where = {
        "source": "lake",
        "lake": source,
        "export_id": source if is_export_id(source) else None,
        "destination": files.destination.name,
        "files": read,
        "events": len(rows),
    }
    return rows, where
