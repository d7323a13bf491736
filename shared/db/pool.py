"""An asyncpg pool with JSON codecs, so jsonb columns take and give dicts."""

from __future__ import annotations

import asyncpg
import orjson


async def _init_connection(connection: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await connection.set_type_codec(
            kind,
            encoder=lambda value: orjson.dumps(value).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 5, command_timeout: float | None = None) -> asyncpg.Pool:
    """``command_timeout``: seconds any one statement may take (None: no limit)."""
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, command_timeout=command_timeout
    )
    assert pool is not None
    return pool
