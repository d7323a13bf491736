"""The consumer's BatchLoop handler: decode, score, write, emit.

Rows reach PostgreSQL inside the handler, so BatchLoop commits the batch's
offsets only after they are durable; the prediction and alert events go out
(and are acknowledged) before the commit too.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import structlog
from aiokafka.structs import ConsumerRecord

from services.consumer import metrics
from services.consumer.decode import decode_batch
from services.consumer.history import history_rows, retention_horizon
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
from services.consumer.scoring import TaskScores, score_batch
from services.consumer.store import write_batch
from shared.kafka.messages import HandlerResult, Outgoing
from shared.ml.served import ServedModels
from shared.streams.catalog import Catalog
from shared.topics import Topics

log = structlog.get_logger(__name__)

# Database unreachable or a lock conflict: BatchLoop rewinds and retries the
# batch instead of dead-lettering it.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.OperatorInterventionError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)


class ScoringHandler:
    def __init__(self, topics: Topics, catalog: Catalog, models: ServedModels, pool: asyncpg.Pool,
                 rolling: RollingErrors, history_months: int = 13) -> None:
        self.topics = topics
        self.catalog = catalog
        self.models = models
        self.pool = pool
        self.rolling = rolling
        self.history_months = history_months
        models.on_swap.append(self._forget_old_versions)

    async def __call__(self, records: list[ConsumerRecord]) -> HandlerResult:
        batches, rejected = decode_batch(self.topics, self.catalog, records)
        models = self.models.snapshot()
        produced_at = now_iso()
        rows: list[tuple] = []
        alerts: list[tuple] = []
        entities: list[tuple] = []
        history: list[tuple] = []
        horizon = retention_horizon(datetime.now(UTC), self.history_months)
        outputs: list[Outgoing] = []
        scored: list[tuple[str, list[TaskScores]]] = []
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
            entities.extend(entity_state_rows(batch, alerting_result(results)))
            history.extend(history_rows(batch, alerting_result(results), horizon))
            scored.append((name, results))
        self._observe(scored)
        # The rows are written while the loop sends the outputs; it commits
        # the offsets only once both are done.
        return HandlerResult(outputs=outputs, rejected=rejected, effects=[write_batch(self.pool, rows, alerts, entities, history)])

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
