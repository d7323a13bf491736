"""The lake's manifest in PostgreSQL: exports, segments and files.

The protocol that makes each source row land in exactly one file, however
often an export is killed and restarted:

1. plan: a segment (a range of one stream's source rows: Kafka offsets of a
   partition, transaction ids, or hours) is recorded as ``pending`` before
   any file is written; the next segment starts where the latest ends;
2. write: each of the segment's files (one per date) is written to a
   temporary name and committed under a name made of the segment's bounds,
   then recorded in ``export_files``;
3. commit: the segment becomes ``committed``.

A pending segment is redone by the next export with the same bounds, after
its temporary files are discarded: the same rows come out under the same
names, replacing whatever a killed attempt committed. Nothing is skipped
(the next segment starts at the pending one's end, whether it succeeds now
or later) and nothing is doubled (names, not appends).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
PENDING, COMMITTED = "pending", "committed"
SCHEDULE, COMMAND = "schedule", "command"


@dataclass(frozen=True)
class Segment:
    id: int
    destination: str
    stream: str
    kind: str
    part: int
    cursor_from: int
    cursor_to: int


@dataclass(frozen=True)
class ExportRun:
    id: str
    trigger: str
    streams: tuple[str, ...]
    kinds: tuple[str, ...]
    requested_at: datetime


async def queue_export(db: asyncpg.Pool | asyncpg.Connection, export_id: str, trigger: str,
                       streams: list[str] | None = None, kinds: list[str] | None = None) -> None:
    await db.execute(
        "INSERT INTO exports (id, trigger, streams, kinds, status) VALUES ($1, $2, $3, $4, 'queued')",
        export_id, trigger, list(streams or ()), list(kinds or ()),
    )


async def last_scheduled(db: asyncpg.Pool | asyncpg.Connection) -> datetime | None:
    return await db.fetchval("SELECT max(requested_at) FROM exports WHERE trigger = 'schedule'")


async def requeue_running(db: asyncpg.Pool | asyncpg.Connection, destination: str) -> int:
    """Exports left running towards ``destination`` go back to the queue; only
    the exporter holding the destination's lock, and running none, may ask."""
    status = await db.execute(
        "UPDATE exports SET status = 'queued' WHERE status = 'running' AND destination = $1", destination)
    return int(status.rsplit(" ", 1)[-1])


async def claim_export(db: asyncpg.Pool | asyncpg.Connection, destination: str) -> ExportRun | None:
    """The oldest queued export, now running towards ``destination``."""
    row = await db.fetchrow(
        """UPDATE exports SET status = 'running', destination = $1, started_at = now(), error = NULL
           WHERE id = (SELECT id FROM exports WHERE status = 'queued' ORDER BY requested_at, id
                       FOR UPDATE SKIP LOCKED LIMIT 1)
           RETURNING id, trigger, streams, kinds, requested_at""",
        destination,
    )
    if row is None:
        return None
    return ExportRun(row["id"], row["trigger"], tuple(row["streams"]), tuple(row["kinds"]), row["requested_at"])


async def finish_export(db: asyncpg.Pool | asyncpg.Connection, export_id: str, error: str | None = None) -> None:
    """Done (or failed with ``error``), with the files and rows it committed."""
    await db.execute(
        """UPDATE exports SET status = $2, error = $3, finished_at = now(),
                  files = (SELECT count(*) FROM export_files WHERE export_id = $1),
                  rows = (SELECT coalesce(sum(rows), 0) FROM export_files WHERE export_id = $1)
           WHERE id = $1""",
        export_id, FAILED if error else DONE, error,
    )


async def pending_segments(db: asyncpg.Pool | asyncpg.Connection, destination: str, stream: str,
                           kind: str) -> list[Segment]:
    rows = await db.fetch(
        """SELECT id, destination, stream, kind, part, cursor_from, cursor_to FROM export_segments
           WHERE destination = $1 AND stream = $2 AND kind = $3 AND status = 'pending'
           ORDER BY part, cursor_from""",
        destination, stream, kind,
    )
    return [Segment(**dict(row)) for row in rows]


async def next_cursor(db: asyncpg.Pool | asyncpg.Connection, destination: str, stream: str, kind: str,
                      part: int) -> int | None:
    """Where the next segment starts: the end of the latest one (None: none yet)."""
    return await db.fetchval(
        "SELECT max(cursor_to) FROM export_segments WHERE destination = $1 AND stream = $2 AND kind = $3 AND part = $4",
        destination, stream, kind, part,
    )


async def plan_segment(db: asyncpg.Pool | asyncpg.Connection, export_id: str, destination: str, stream: str,
                       kind: str, part: int, cursor_from: int, cursor_to: int) -> Segment:
    segment_id = await db.fetchval(
        """INSERT INTO export_segments (destination, stream, kind, part, cursor_from, cursor_to, status, export_id)
           VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7) RETURNING id""",
        destination, stream, kind, part, cursor_from, cursor_to, export_id,
    )
    return Segment(segment_id, destination, stream, kind, part, cursor_from, cursor_to)


async def adopt_segment(db: asyncpg.Pool | asyncpg.Connection, segment: Segment, export_id: str) -> None:
    """A pending segment is redone by ``export_id``."""
    await db.execute("UPDATE export_segments SET export_id = $2 WHERE id = $1", segment.id, export_id)


async def record_file(db: asyncpg.Pool | asyncpg.Connection, segment: Segment, export_id: str, path: str,
                      day: date, rows: int, size: int) -> None:
    await db.execute(
        """INSERT INTO export_files (destination, path, segment_id, export_id, stream, kind, date, rows, bytes)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (destination, path) DO UPDATE SET
               segment_id = EXCLUDED.segment_id, export_id = EXCLUDED.export_id, rows = EXCLUDED.rows,
               bytes = EXCLUDED.bytes, committed_at = now()""",
        segment.destination, path, segment.id, export_id, segment.stream, segment.kind, day, rows, size,
    )


async def commit_segment(db: asyncpg.Pool | asyncpg.Connection, segment: Segment, rows: int) -> None:
    await db.execute(
        "UPDATE export_segments SET status = 'committed', rows = $2, committed_at = now() WHERE id = $1",
        segment.id, rows,
    )


async def export_status(db: asyncpg.Pool | asyncpg.Connection, export_id: str) -> dict[str, Any] | None:
    """An export's row with its files counted per stream and kind."""
    row = await db.fetchrow(
        """SELECT id, trigger, streams, kinds, destination, status, error, files, rows,
                  requested_at, started_at, finished_at FROM exports WHERE id = $1""",
        export_id,
    )
    if row is None:
        return None
    parts = await db.fetch(
        """SELECT stream, kind, count(*) AS files, sum(rows) AS rows, min(date) AS first_date, max(date) AS last_date
           FROM export_files WHERE export_id = $1 GROUP BY stream, kind ORDER BY stream, kind""",
        export_id,
    )
    return {**dict(row), "parts": [dict(part) for part in parts]}


async def recent_exports(db: asyncpg.Pool | asyncpg.Connection, limit: int) -> list[dict[str, Any]]:
    rows = await db.fetch(
        """SELECT id, trigger, streams, kinds, destination, status, error, files, rows,
                  requested_at, started_at, finished_at FROM exports ORDER BY requested_at DESC, id LIMIT $1""",
        limit,
    )
    return [dict(row) for row in rows]


async def export_files(db: asyncpg.Pool | asyncpg.Connection, export_id: str, stream: str,
                       kind: str) -> tuple[str | None, list[str]]:
    """(the export's destination, the paths of its files of ``stream`` and ``kind``)."""
    destination = await db.fetchval("SELECT destination FROM exports WHERE id = $1", export_id)
    rows = await db.fetch(
        "SELECT path FROM export_files WHERE export_id = $1 AND stream = $2 AND kind = $3 ORDER BY path",
        export_id, stream, kind,
    )
    return destination, [row["path"] for row in rows]
