"""Databases of their own on a shared PostgreSQL server, for tests and
benchmarks: each run or phase gets a fresh one and drops it afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def with_database(dsn: str, name: str) -> str:
    """The same server's DSN with another database name."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


def database_name(name: str) -> str:
    """A valid unquoted-style identifier: lower case, '-' as '_', at most 63 characters."""
    return name.lower().replace("-", "_")[:63]


async def _execute(server_dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(server_dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def create_database(server_dsn: str, name: str) -> str:
    """Create database ``name`` (see :func:`database_name`); returns its DSN."""
    name = database_name(name)
    await _execute(server_dsn, f'CREATE DATABASE "{name}"')
    return with_database(server_dsn, name)


async def drop_database(server_dsn: str, name: str) -> None:
    await _execute(server_dsn, f'DROP DATABASE IF EXISTS "{database_name(name)}" WITH (FORCE)')


@asynccontextmanager
async def fresh_database(server_dsn: str, name: str) -> AsyncIterator[str]:
    """Create database ``name``, yield its DSN, drop it (connections included)."""
    dsn = await create_database(server_dsn, name)
    try:
        yield dsn
    finally:
        await drop_database(server_dsn, name)
