"""Where each kind of file reads its rows, and how a segment's range is planned.

A source plans the next segment of a stream from a cursor (where the
previous segment ended) and reads a planned segment back, always the same
rows for the same bounds:

- features: Kafka offsets of one partition of the stream's features topic,
  up to the end offset seen when planning;
- predictions, alerts: PostgreSQL transaction ids (the ``txid`` column),
  up to the oldest transaction still running, so no row can later appear
  inside a range already planned;
- history: hours (as epoch seconds) that are closed: at least
  EXPORT_HISTORY_LAG_HOURS later hours have begun, by the stream's readings
  or by the clock. Readings arriving for an hour already exported stay in
  PostgreSQL only.

Segments hold at most ``max_rows`` rows (a single transaction or hour
larger than that is one segment).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import asyncpg
import pyarrow as pa
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.kafka.partitions import topic_partitions
from shared.lake.layout import ALERTS, FEATURES, HISTORY, PREDICTIONS
from shared.lake.manifest import Segment
from shared.lake.tables import ALERTS_SCHEMA, HISTORY_SCHEMA, PREDICTIONS_SCHEMA, features_table, history_rows, rows_table
from shared.months import hour_of
from shared.streams import StreamSpec
from shared.topics import Topics

log = structlog.get_logger(__name__)


class Source(Protocol):
    kind: str

    def applies(self, stream: StreamSpec) -> bool: ...

    async def parts(self, stream: StreamSpec) -> list[int]: ...

    async def plan(self, stream: StreamSpec, part: int, start: int | None) -> tuple[int, int] | None:
        """(from, to) of the next segment, ``start`` being where the last one
        ended (None: no segment yet); None when there is nothing new."""

    async def read(self, stream: StreamSpec, segment: Segment) -> pa.Table: ...


class FeaturesSource:
    kind = FEATURES

    def __init__(self, consumer: AIOKafkaConsumer, topics: Topics, max_rows: int, timeout: float) -> None:
        self.consumer = consumer
        self.topics = topics
        self.max_rows = max_rows
        self.timeout = timeout

    def applies(self, stream: StreamSpec) -> bool:
        return True

    async def parts(self, stream: StreamSpec) -> list[int]:
        topic = self.topics.features(stream.name)
        async with asyncio.timeout(self.timeout):
            if topic not in await self.consumer.topics():
                return []
        return [tp.partition for tp in await topic_partitions(self.consumer, [topic], timeout=self.timeout)]

    async def plan(self, stream: StreamSpec, part: int, start: int | None) -> tuple[int, int] | None:
        tp = TopicPartition(self.topics.features(stream.name), part)
        async with asyncio.timeout(self.timeout):
            first = (await self.consumer.beginning_offsets([tp]))[tp]
            end = (await self.consumer.end_offsets([tp]))[tp]
        begin = first if start is None else max(start, first)
        if start is not None and start < first:
            # Kafka's retention deleted them before any export read them.
            log.warning("export_offsets_expired", topic=tp.topic, partition=part, lost=first - start)
        if end <= begin:
            return None
        return begin, min(end, begin + self.max_rows)

    async def read(self, stream: StreamSpec, segment: Segment) -> pa.Table:
        tp = TopicPartition(self.topics.features(stream.name), segment.part)
        records: list[tuple[int, int, bytes | None]] = []
        async with asyncio.timeout(self.timeout):
            self.consumer.assign([tp])
            self.consumer.seek(tp, segment.cursor_from)
            while await self.consumer.position(tp) < segment.cursor_to:
                batches = await self.consumer.getmany(tp, timeout_ms=500, max_records=5000)
                for record in batches.get(tp, []):
                    if segment.cursor_from <= record.offset < segment.cursor_to:
                        records.append((record.partition, record.offset, record.value))
        return await asyncio.to_thread(features_table, stream, records)


@dataclass(frozen=True)
class _Table:
    name: str
    columns: tuple[str, ...]
    order: str
    condition: str = "true"


class TxidSource:
    """Rows of a table that carries the writing transaction's id (``txid``)."""

    def __init__(self, kind: str, pool: asyncpg.Pool, table: _Table, schema: pa.Schema, max_rows: int) -> None:
        self.kind = kind
        self.pool = pool
        self.table = table
        self.schema = schema
        self.max_rows = max_rows

    def applies(self, stream: StreamSpec) -> bool:
        if self.kind == ALERTS:
            return any(task.alert for task in stream.tasks)
        return bool(stream.tasks)

    async def parts(self, stream: StreamSpec) -> list[int]:
        return [0]

    async def plan(self, stream: StreamSpec, part: int, start: int | None) -> tuple[int, int] | None:
        begin = start or 0
        where = (f"stream = $1 AND {self.table.condition} AND txid >= $2::text::xid8 "
                 "AND txid < pg_snapshot_xmin(pg_current_snapshot())")
        row = await self.pool.fetchrow(
            f"""SELECT (SELECT txid::text FROM {self.table.name} WHERE {where} ORDER BY txid OFFSET $3 LIMIT 1) AS cut,
                       (SELECT max(txid)::text FROM {self.table.name} WHERE {where}) AS last""",
            stream.name, str(begin), self.max_rows,
        )
        if row["last"] is None:
            return None
        if row["cut"] is not None:
            # All of the cut's transaction goes to the next segment, unless it alone is bigger than a segment.
            return begin, max(int(row["cut"]), begin + 1)
        return begin, int(row["last"]) + 1

    async def read(self, stream: StreamSpec, segment: Segment) -> pa.Table:
        rows = await self.pool.fetch(
            f"""SELECT {", ".join(self.table.columns)} FROM {self.table.name}
                WHERE stream = $1 AND {self.table.condition}
                  AND txid >= $2::text::xid8 AND txid < $3::text::xid8
                ORDER BY {self.table.order}""",
            stream.name, str(segment.cursor_from), str(segment.cursor_to),
        )
        return await asyncio.to_thread(rows_table, self.schema, [dict(row) for row in rows])


def predictions_source(pool: asyncpg.Pool, max_rows: int) -> TxidSource:
    # A shadow's predictions were never served: the lake holds the champion's.
    table = _Table("predictions", tuple(PREDICTIONS_SCHEMA.names), "txid, event_id, task, model_version",
                   "role = 'champion'")
    return TxidSource(PREDICTIONS, pool, table, PREDICTIONS_SCHEMA, max_rows)


def alerts_source(pool: asyncpg.Pool, max_rows: int) -> TxidSource:
    return TxidSource(ALERTS, pool, _Table("alerts", tuple(ALERTS_SCHEMA.names), "txid, event_id"), ALERTS_SCHEMA,
                      max_rows)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


class HistorySource:
    kind = HISTORY

    def __init__(self, pool: asyncpg.Pool, max_rows: int, lag_hours: int) -> None:
        self.pool = pool
        self.max_rows = max_rows
        self.lag = timedelta(hours=lag_hours)

    def applies(self, stream: StreamSpec) -> bool:
        return stream.entity is not None and stream.entity.history is not None

    async def parts(self, stream: StreamSpec) -> list[int]:
        return [0]

    async def plan(self, stream: StreamSpec, part: int, start: int | None) -> tuple[int, int] | None:
        span = await self.pool.fetchrow(
            "SELECT min(hour) AS first, max(hour) AS newest FROM entity_history WHERE stream = $1", stream.name)
        first, newest = span["first"], span["newest"]
        if newest is None:
            return None
        # Hours before this one are closed: `lag` later hours have begun.
        bound = max(newest, hour_of(datetime.now(UTC))) - self.lag + timedelta(hours=1)
        begin = datetime.fromtimestamp(start, UTC) if start is not None else first
        row = await self.pool.fetchrow(
            """SELECT (SELECT hour FROM entity_history WHERE stream = $1 AND hour >= $2 AND hour < $3
                       ORDER BY hour OFFSET $4 LIMIT 1) AS cut,
                      (SELECT max(hour) FROM entity_history WHERE stream = $1 AND hour >= $2 AND hour < $3) AS last""",
            stream.name, begin, bound, self.max_rows,
        )
        if row["last"] is None:
            return None
        end = max(row["cut"], begin + timedelta(hours=1)) if row["cut"] is not None else row["last"] + timedelta(hours=1)
        return _epoch(begin), _epoch(end)

    async def read(self, stream: StreamSpec, segment: Segment) -> pa.Table:
        rows = await self.pool.fetch(
            """SELECT key, hour, value_sum, value_count, deviation, anomalies, readings, kind, area, latitude, longitude
               FROM entity_history WHERE stream = $1 AND hour >= $2 AND hour < $3 ORDER BY hour, key""",
            stream.name, datetime.fromtimestamp(segment.cursor_from, UTC), datetime.fromtimestamp(segment.cursor_to, UTC),
        )
        return await asyncio.to_thread(rows_table, HISTORY_SCHEMA, history_rows(dict(row) for row in rows))
