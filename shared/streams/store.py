"""Registered stream declarations in PostgreSQL: every version of every stream.

The table is the record of what was registered and when; the compacted
streams topic carries the same versions to every service.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from pydantic import BaseModel, ConfigDict

from shared.streams.declaration import StreamSpec, parse_declaration

Executor = asyncpg.Pool | asyncpg.Connection


class StoredStream(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    status: str
    declaration: dict[str, Any]
    fingerprint: str
    created_at: datetime

    @property
    def spec(self) -> StreamSpec:
        return parse_declaration(self.declaration)


def fingerprint(spec: StreamSpec) -> str:
    """A hash of the declaration's canonical JSON: equal for identical declarations."""
    return hashlib.sha256(orjson.dumps(spec.to_data(), option=orjson.OPT_SORT_KEYS)).hexdigest()


_COLUMNS = "name, version, status, declaration, fingerprint, created_at"


async def latest(db: Executor, name: str) -> StoredStream | None:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM streams WHERE name = $1 ORDER BY version DESC LIMIT 1", name)
    return StoredStream(**dict(row)) if row else None


async def versions(db: Executor, name: str) -> list[StoredStream]:
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM streams WHERE name = $1 ORDER BY version", name)
    return [StoredStream(**dict(row)) for row in rows]


async def all_latest(db: Executor) -> list[StoredStream]:
    rows = await db.fetch(
        f"""SELECT DISTINCT ON (name) {_COLUMNS} FROM streams ORDER BY name, version DESC"""
    )
    return [StoredStream(**dict(row)) for row in rows]


async def insert(db: Executor, spec: StreamSpec, version: int, status: str) -> StoredStream:
    row = await db.fetchrow(
        f"""INSERT INTO streams (name, version, status, declaration, fingerprint)
            VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}""",
        spec.name, version, status, spec.to_data(), fingerprint(spec),
    )
    return StoredStream(**dict(row))


async def lock(connection: asyncpg.Connection, name: str) -> None:
    """Serialise registrations of one stream (inside a transaction)."""
    await connection.execute("SELECT pg_advisory_xact_lock(hashtext('fluxo.stream.' || $1))", name)
