"""Migrations against a real PostgreSQL, each test in a database of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from shared.db import apply_migrations, create_pool
from shared.db.databases import fresh_database
from shared.db.migrations import MIGRATIONS_DIR, discover

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def database(postgres_dsn: str, unique_name: Callable[..., str]) -> AsyncIterator[str]:
    async with fresh_database(postgres_dsn, unique_name("db")) as dsn:
        yield dsn


async def schema_snapshot(connection: asyncpg.Connection) -> list[tuple]:
    rows = await connection.fetch(
        """SELECT table_name, column_name, data_type FROM information_schema.columns
           WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"""
    )
    return [tuple(row) for row in rows]


async def test_migrations_apply_once_and_a_second_run_changes_nothing(database: str) -> None:
    pool = await create_pool(database)
    try:
        first = await apply_migrations(pool)
        assert first == [f"{m.version:04d}_{m.name}" for m in discover()]
        async with pool.acquire() as connection:
            before = await schema_snapshot(connection)
            recorded = await connection.fetch("SELECT version, applied_at FROM schema_migrations ORDER BY version")
        assert {"models", "training_runs", "predictions", "alerts", "datasets"} <= {t for t, *_ in before}

        assert await apply_migrations(pool) == []
        async with pool.acquire() as connection:
            assert await schema_snapshot(connection) == before
            again = await connection.fetch("SELECT version, applied_at FROM schema_migrations ORDER BY version")
        assert [tuple(r) for r in again] == [tuple(r) for r in recorded]
    finally:
        await pool.close()


async def test_one_served_prediction_per_event_and_task(database: str) -> None:
    pool = await create_pool(database)
    try:
        await apply_migrations(pool)
        insert = """INSERT INTO predictions (event_id, stream, task, model_version, status, prediction, role)
                    VALUES ($1, 'energy', 'carbon', $2, $3, 1.0, $4) ON CONFLICT DO NOTHING"""
        await pool.execute(insert, "e1", 1, "scored", "champion")
        await pool.execute(insert, "e1", 1, "scored", "champion")  # redelivered
        await pool.execute(insert, "e1", 2, "scored", "champion")  # redelivered after a model swap
        await pool.execute(insert, "e1", 3, "scored", "shadow")  # a shadow's row is apart
        await pool.execute(insert, "e2", 0, "unscored", "champion")  # no model yet, then one
        await pool.execute(insert, "e2", 1, "scored", "champion")
        rows = await pool.fetch("SELECT event_id, model_version, role FROM predictions ORDER BY 1, 2")
        assert [tuple(r) for r in rows] == [("e1", 1, "champion"), ("e1", 3, "shadow"),
                                            ("e2", 0, "champion"), ("e2", 1, "champion")]
    finally:
        await pool.close()


async def test_an_edited_applied_migration_is_an_error(database: str, tmp_path: Path) -> None:
    for source in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / source.name).write_text(source.read_text())
    connection = await asyncpg.connect(database)
    try:
        await apply_migrations(connection, tmp_path)
        first = sorted(tmp_path.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited\n")
        with pytest.raises(RuntimeError, match="changed after it was applied"):
            await apply_migrations(connection, tmp_path)
    finally:
        await connection.close()
