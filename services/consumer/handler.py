"""The consumer's BatchLoop handler: decode, score, write, emit; and labels.

Features events are scored by each task's champion (served: predictions
topic, alerts, entity state) and, when the registry names one, its shadow
(stored apart, never served). Labels that arrive later join the stored
predictions. Rows reach PostgreSQL inside the handler's effect, so BatchLoop
commits the batch's offsets only after they are durable; the prediction and
alert events go out (and are acknowledged) before the commit too.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import numpy as np
import structlog
from aiokafka.structs import ConsumerRecord

from services.consumer import metrics
from services.consumer.decode import decode_batch
from services.consumer.history import history_rows, retention_horizon
from services.consumer.labels import Joined, Label, join_labels, join_pending, parse_labels
from services.consumer.monitoring import Monitoring
from services.consumer.outputs import (
    alert_messages,
    alert_rows,
    alerting_result,
    entity_state_rows,
    now_iso,
    parse_times,
    prediction_messages,
    prediction_rows,
    source_times,
)
from services.consumer.rolling import RollingErrors, metric_name
from services.consumer.scoring import TaskScores, score_batch, score_shadows
from services.consumer.store import write_batch
from shared.kafka.messages import HandlerResult, Outgoing, Rejected
from shared.ml.served import ServedModels
from shared.retry import TRANSIENT_POSTGRES
from shared.streams import StreamSpec
from shared.streams.catalog import Catalog
from shared.topics import LABELS, Topics

log = structlog.get_logger(__name__)

# A database outage, in any of its forms (shared.retry.TRANSIENT_POSTGRES:
# unreachable, restarting, statement timeout, read-only after a failover,
# disk full, too many connections, serialization failures...): BatchLoop
# rewinds and retries the batch with back-off instead of sending it through
# isolation, which would dead-letter every record of it. Every OSError from
# the handler's write is a socket's (the handler touches no file). Data
# errors (invalid text, a NUL character) are not here: isolation finds the
# record and dead-letters it with PostgreSQL's reason.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_POSTGRES, OSError)

SHADOW = "shadow"


class ScoringHandler:
    def __init__(self, topics: Topics, catalog: Catalog, models: ServedModels, pool: asyncpg.Pool,
                 rolling: RollingErrors, monitoring: Monitoring | None = None,
                 history_months: int = 13) -> None:
        self.topics = topics
        self.catalog = catalog
        self.models = models
        self.pool = pool
        self.rolling = rolling
        self.history_months = history_months
        self.monitoring = monitoring or Monitoring(catalog, 1000)
        models.on_swap.append(self._forget_old_versions)

    async def __call__(self, records: list[ConsumerRecord]) -> HandlerResult:
        features: list[ConsumerRecord] = []
        labels: dict[str, list[ConsumerRecord]] = {}
        for record in records:
            if self.topics.kind_of(record.topic) == LABELS.base:
                labels.setdefault(self.topics.stream_of(record.topic), []).append(record)
            else:
                features.append(record)
        result = self._score(features) if features else HandlerResult()
        for stream, group in labels.items():
            self._labels(stream, group, result)
        return result

    def _score(self, records: list[ConsumerRecord]) -> HandlerResult:
        batches, rejected = decode_batch(self.topics, self.catalog, records)
        models = self.models.snapshot()
        shadows = self.models.shadow_snapshot()
        produced_at = now_iso()
        rows: list[tuple] = []
        alerts: list[tuple] = []
        entities: list[tuple] = []
        history: list[tuple] = []
        horizon = retention_horizon(datetime.now(UTC), self.history_months)
        outputs: list[Outgoing] = []
        scored: list[tuple[str, list[TaskScores]]] = []
        written: dict[str, list[str]] = {}
        for name, batch in batches.items():
            results = score_batch(batch, models)
            times = source_times(batch)
            produced = parse_times(times)
            topic = self.topics.predictions(name)
            for result in results:
                task_rows = prediction_rows(batch, result, produced)
                rows.extend(task_rows)
                task_times = [times[i] for i in result.rows.tolist()]
                outputs.extend(prediction_messages(topic, task_rows, task_times, produced_at))
                task_alerts = alert_rows(batch, result)
                alerts.extend(task_alerts)
                for alert in task_alerts:
                    metrics.count_alert(name, alert[4])  # (event_id, stream, task, key, area, ...)
                outputs.extend(alert_messages(self.topics.alerts, task_alerts, produced_at))
            shadow_results = score_shadows(batch, shadows)
            for result in shadow_results:
                rows.extend(prediction_rows(batch, result, produced, SHADOW))
            entities.extend(entity_state_rows(batch, alerting_result(results)))
            history.extend(history_rows(batch, alerting_result(results), horizon))
            scored.append((name, results + shadow_results))
            written[name] = [event["event_id"] for event in batch.events]
            self.monitoring.observe(name, results, models)
        self._observe(scored)
        # The rows are written while the loop sends the outputs; it commits
        # the offsets only once both are done. Labels that were waiting for
        # these events join in the same transaction.
        specs = {name: batch.stream for name, batch in batches.items()}
        return HandlerResult(outputs=outputs, rejected=rejected,
                             effects=[self._write(rows, alerts, entities, history, specs, written)])

    async def _write(self, rows: list[tuple], alerts: list[tuple], entities: list[tuple], history: list[tuple],
                     specs: dict[str, StreamSpec], written: dict[str, list[str]]) -> None:
        joined: list[tuple[str, Joined]] = []

        async def waiting_labels(connection: asyncpg.Connection) -> None:
            for name, ids in written.items():
                spec = specs[name]
                if spec.targets:
                    joined.extend((name, row) for row in await join_pending(connection, spec, ids))

        await write_batch(self.pool, rows, alerts, entities, history, after=waiting_labels)
        self._late(joined)

    def _labels(self, stream: str, records: list[ConsumerRecord], result: HandlerResult) -> None:
        if stream not in self.catalog:
            result.rejected.extend(Rejected(r, f"topic {r.topic!r} is the labels topic of no active stream")
                                   for r in records)
            return
        spec = self.catalog.get(stream)
        labels, rejected = parse_labels(spec, records)
        result.rejected.extend(rejected)
        if rejected:
            metrics.LABELS.labels(stream, "rejected").inc(len(rejected))
        if labels:
            result.effects.append(self._join(spec, labels))

    async def _join(self, spec: StreamSpec, labels: list[Label]) -> None:
        async with self.pool.acquire() as connection, connection.transaction():
            joined, reached = await join_labels(connection, spec, labels)
        metrics.LABELS.labels(spec.name, "joined").inc(len(reached))
        metrics.LABELS.labels(spec.name, "pending").inc(len(labels) - len(reached))
        self._late([(spec.name, row) for row in joined])

    def _late(self, joined: list[tuple[str, Joined]]) -> None:
        """Late labels feed the rolling error of the version each row belongs to."""
        for stream, row in joined:
            if row.error is None:
                continue
            try:
                kind = self.catalog.get(stream).task(row.task).kind
            except KeyError:
                continue
            value = self.rolling.update((stream, row.task, row.model_version), kind, np.array([row.error]))
            if value is not None:
                metrics.ROLLING_ERROR.labels(stream, row.task, str(row.model_version), metric_name(kind)).set(value)
            if row.role != SHADOW:
                self.monitoring.late(stream, row.task, row.model_version, [row.error])

    def _observe(self, scored: list[tuple[str, list[TaskScores]]]) -> None:
        for stream, results in scored:
            for result in results:
                task = result.task
                metrics.PREDICTIONS.labels(stream, task.name, result.status).inc(len(result.rows))
                if result.prediction is None:
                    continue
                metrics.SCORING_LATENCY.labels(stream, task.name).observe(result.seconds)
                value = self.rolling.update((stream, task.name, result.model_version), task.kind, result.error)
                if value is not None:
                    metrics.ROLLING_ERROR.labels(stream, task.name, str(result.model_version), metric_name(task.kind)).set(value)

    def _forget_old_versions(self, stream: str, task: str, version: int) -> None:
        try:
            kind = self.catalog.get(stream).task(task).kind
        except KeyError:
            return
        metric = metric_name(kind)
        for _, _, old in self.rolling.forget(stream, task, version):
            try:
                metrics.ROLLING_ERROR.remove(stream, task, str(old), metric)
            except KeyError:
                pass
