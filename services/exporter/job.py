"""One export run: for each stream and kind, redo the pending segments,
then plan and write new ones until the source has nothing more (see
shared.lake.manifest for the protocol).

A failure stops the run with its reason in the export's row and a metric:
``destination`` (the bucket or directory refused or did not answer),
``kafka``, ``database`` or ``internal``. Whatever was planned stays pending,
so the next export (the next scheduled one, or one asked for) writes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from services.exporter import metrics
from services.exporter.settings import ExporterSettings
from services.exporter.sources import (
    FeaturesSource,
    HistorySource,
    Source,
    alerts_source,
    predictions_source,
)
from shared.lake import manifest
from shared.lake.destination import Destination
from shared.lake.layout import FEATURES, KINDS, file_path, temporary_dir, temporary_path
from shared.lake.manifest import ExportRun, Segment
from shared.lake.tables import DATE_COLUMN, parquet_bytes, split_by_date
from shared.streams import StreamSpec
from shared.streams.catalog import Catalog
from shared.topics import Topics

log = structlog.get_logger(__name__)
T = TypeVar("T")

DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


class ExportFailed(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Interrupted(Exception):
    """The exporter is stopping; the run goes back to the queue."""


def _describe(error: BaseException) -> str:
    text = str(error).strip().replace("\n", " ")
    return f"{type(error).__name__}: {text[:400]}" if text else type(error).__name__


class Exporter:
    def __init__(self, settings: ExporterSettings, pool: asyncpg.Pool, catalog: Catalog, topics: Topics,
                 destination: Destination) -> None:
        self.settings = settings
        self.pool = pool
        self.catalog = catalog
        self.topics = topics
        self.destination = destination

    async def run(self, export: ExportRun, stop: asyncio.Event | None = None) -> str | None:
        """Run ``export`` to its end; returns the failure's reason, or None when done."""
        started = time.monotonic()
        log.info("export_started", export_id=export.id, trigger=export.trigger, destination=self.destination.name)
        try:
            async with self._sources(export) as sources:
                for spec in self._streams(export):
                    for source in sources:
                        if source.applies(spec):
                            await self._export(export, spec, source, stop)
        except Interrupted:
            await self.pool.execute("UPDATE exports SET status = 'queued' WHERE id = $1", export.id)
            log.info("export_interrupted", export_id=export.id)
            return None
        except ExportFailed as failure:
            await manifest.finish_export(self.pool, export.id, f"{failure.reason}: {failure.detail}")
            metrics.EXPORTS.labels(export.trigger, "failed").inc()
            metrics.EXPORT_FAILURES.labels(failure.reason).inc()
            log.warning("export_failed", export_id=export.id, reason=failure.reason, detail=failure.detail)
            return failure.reason
        await manifest.finish_export(self.pool, export.id)
        metrics.EXPORTS.labels(export.trigger, "done").inc()
        metrics.EXPORT_LAST_SUCCESS.set_to_current_time()
        metrics.EXPORT_DURATION.observe(time.monotonic() - started)
        log.info("export_done", export_id=export.id, seconds=round(time.monotonic() - started, 2))
        return None

    def _streams(self, export: ExportRun) -> list[StreamSpec]:
        """The streams asked for (every one known, archived ones too, when none
        was named; a scheduled export those EXPORT_STREAMS names)."""
        entries = {entry.spec.name: entry.spec for entry in self.catalog.entries()}
        if export.streams:
            return [entries[name] for name in export.streams if name in entries]
        return [spec for name, spec in entries.items() if self.settings.exports(name)]

    @contextlib.asynccontextmanager
    async def _sources(self, export: ExportRun) -> AsyncIterator[list[Source]]:
        kinds = export.kinds or KINDS
        max_rows = self.settings.export_segment_max_rows
        sources: list[Source] = []
        consumer = None
        try:
            for kind in kinds:
                if kind == FEATURES:
                    consumer = AIOKafkaConsumer(
                        bootstrap_servers=self.settings.kafka_bootstrap_servers, group_id=None,
                        enable_auto_commit=False, client_id=f"{self.settings.service_name}-features",
                        request_timeout_ms=30_000,
                    )
                    await self._guard("kafka", asyncio.wait_for(consumer.start(), self.settings.export_kafka_timeout))
                    sources.append(FeaturesSource(consumer, self.topics, max_rows, self.settings.export_kafka_timeout))
                elif kind == "predictions":
                    sources.append(predictions_source(self.pool, max_rows))
                elif kind == "alerts":
                    sources.append(alerts_source(self.pool, max_rows))
                elif kind == "history":
                    sources.append(HistorySource(self.pool, max_rows, self.settings.export_history_lag_hours))
            yield sources
        finally:
            if consumer is not None:
                await consumer.stop()

    async def _guard(self, reason: str, call: Awaitable[T]) -> T:
        """Await ``call``; a failure of the part it talks to fails the export with ``reason``."""
        try:
            return await call
        except ExportFailed:
            raise
        except KafkaError as error:
            raise ExportFailed("kafka", _describe(error)) from error
        except DATABASE_ERRORS as error:
            raise ExportFailed("database", _describe(error)) from error
        except (TimeoutError, OSError) as error:
            # pyarrow reports a refused or silent bucket as OSError.
            raise ExportFailed(reason, _describe(error)) from error

    async def _export(self, export: ExportRun, spec: StreamSpec, source: Source, stop: asyncio.Event | None) -> None:
        name, kind, destination = spec.name, source.kind, self.destination.name
        for segment in await self._guard("database", manifest.pending_segments(self.pool, destination, name, kind)):
            await self._guard("database", manifest.adopt_segment(self.pool, segment, export.id))
            await self._write(export, spec, source, segment, stop)
        reader = "kafka" if kind == FEATURES else "database"
        for part in await self._guard(reader, source.parts(spec)):
            while True:
                start = await self._guard("database", manifest.next_cursor(self.pool, destination, name, kind, part))
                planned = await self._guard(reader, source.plan(spec, part, start))
                if planned is None:
                    break
                segment = await self._guard("database", manifest.plan_segment(
                    self.pool, export.id, destination, name, kind, part, *planned))
                await self._write(export, spec, source, segment, stop)

    async def _write(self, export: ExportRun, spec: StreamSpec, source: Source, segment: Segment,
                     stop: asyncio.Event | None) -> None:
        if stop is not None and stop.is_set():
            raise Interrupted
        reader = "kafka" if source.kind == FEATURES else "database"
        table = await self._guard(reader, source.read(spec, segment))
        by_day = await asyncio.to_thread(split_by_date, table, DATE_COLUMN[source.kind])
        discarded = await self._guard("destination", asyncio.to_thread(self.destination.discard,
                                                                       temporary_dir(segment.id)))
        if discarded:
            log.info("export_temporaries_discarded", segment=segment.id, files=discarded)
        for day, rows in by_day.items():
            data = await asyncio.to_thread(parquet_bytes, rows)
            final = file_path(source.kind, spec.name, day, segment.part, segment.cursor_from, segment.cursor_to)
            await self._guard("destination", asyncio.to_thread(
                self.destination.write_whole, data, temporary_path(segment.id, day), final,
                self.settings.export_commit_delay_seconds))
            await self._guard("database", manifest.record_file(
                self.pool, segment, export.id, final, day, rows.num_rows, data.size))
            metrics.EXPORT_FILES.labels(spec.name, source.kind).inc()
            metrics.EXPORT_ROWS.labels(spec.name, source.kind).inc(rows.num_rows)
        await self._guard("database", manifest.commit_segment(self.pool, segment, table.num_rows))
        await self._guard("destination", asyncio.to_thread(self.destination.discard, temporary_dir(segment.id)))
        log.info("export_segment_committed", stream=spec.name, kind=source.kind, part=segment.part,
                 cursor_from=segment.cursor_from, cursor_to=segment.cursor_to, rows=table.num_rows,
                 files=len(by_day))
