"""Judging shadows: a shadow is promoted to champion when its live error on
the same labelled events is not worse than the champion's, and retired when
it is worse.

A shadow's predictions are stored beside the champion's (``role =
'shadow'``). Once at least the task's ``shadow.min_labels`` events have an
actual value and a prediction from both, their mean absolute errors (the
share wrong, for classification) are compared: the shadow is promoted if its
error is at most the champion's x (1 + ``shadow.tolerance``), else retired.
Both errors, the events compared and the decision go in the activation
history. With ``shadow.promote: manual`` the comparison is only recorded (in
the shadow's ``monitoring``) and a person decides; clustering tasks have no
error to compare, so their shadows always wait for a person
(``POST /models/{id}/activate``).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter

from shared.ml import registry
from shared.ml.publish import publish_model
from shared.ml.registry import CHAMPION, RETIRED, ModelRecord
from shared.streams import TaskKind
from shared.streams.catalog import Catalog
from shared.topics import Topics

log = structlog.get_logger(__name__)

SHADOW_DECISIONS = Counter("fluxo_shadow_decisions_total", "Shadows promoted or retired.", ["stream", "task", "outcome"])

_PAIRED = """
SELECT count(*) AS events, avg(abs(s.error)) AS shadow_error, avg(abs(c.error)) AS champion_error
FROM predictions s
JOIN predictions c ON c.event_id = s.event_id AND c.task = s.task AND c.role = 'champion' AND c.model_id = $2
WHERE s.model_id = $1 AND s.role = 'shadow' AND s.error IS NOT NULL AND c.error IS NOT NULL"""


@dataclass(frozen=True)
class Verdict:
    outcome: str  # promoted | retired | waiting
    events: int
    shadow_error: float | None
    champion_error: float | None
    reason: str


def judge(events: int, shadow_error: float | None, champion_error: float | None, min_labels: int,
          tolerance: float) -> Verdict:
    if events < min_labels or shadow_error is None or champion_error is None:
        return Verdict("waiting", events, shadow_error, champion_error,
                       f"{events} of {min_labels} labelled events scored by both")
    if shadow_error <= champion_error * (1 + tolerance):
        return Verdict("promoted", events, shadow_error, champion_error,
                       f"live error {shadow_error:.4g} vs the champion's {champion_error:.4g} on the same "
                       f"{events} events: not worse (tolerance {tolerance:g})")
    return Verdict("retired", events, shadow_error, champion_error,
                   f"live error {shadow_error:.4g} vs the champion's {champion_error:.4g} on the same "
                   f"{events} events: worse (tolerance {tolerance:g})")


class ShadowJudge:
    def __init__(self, pool: asyncpg.Pool, producer: AIOKafkaProducer, topics: Topics, catalog: Catalog) -> None:
        self.pool = pool
        self.producer = producer
        self.topics = topics
        self.catalog = catalog

    async def run(self, stop: asyncio.Event, interval: float) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
            try:
                await self.tick()
            except Exception as error:  # noqa: BLE001 - the next tick tries again
                log.warning("shadow_judging_failed", error=f"{type(error).__name__}: {error}")

    async def tick(self) -> list[tuple[ModelRecord, Verdict]]:
        done = []
        async with asyncio.timeout(30):
            shadows = await registry.shadows(self.pool)
        for shadow in shadows:
            if shadow.stream not in self.catalog:
                continue
            task = self.catalog.get(shadow.stream).task(shadow.task)
            if task.kind is TaskKind.CLUSTERING:
                continue
            async with asyncio.timeout(30):
                champion = await registry.active_model(self.pool, shadow.stream, shadow.task)
                if champion is None:
                    verdict = Verdict("promoted", 0, None, None, "no champion")
                else:
                    row = await self.pool.fetchrow(_PAIRED, shadow.id, champion.id)
                    verdict = judge(row["events"], row["shadow_error"], row["champion_error"],
                                    task.shadow.min_labels, task.shadow.tolerance)
                if verdict.outcome == "waiting":
                    continue
                if task.shadow.promote == "manual":
                    # A person decides; the comparison is there for them (GET /models, the console).
                    await registry.update_monitoring(self.pool, shadow.id, {"shadow": {
                        "verdict": verdict.outcome, "events": verdict.events, "reason": verdict.reason,
                        "shadow_error": verdict.shadow_error, "champion_error": verdict.champion_error}})
                    continue
                alias = CHAMPION if verdict.outcome == "promoted" else RETIRED
                changed = await registry.set_alias(self.pool, shadow.id, alias, trigger="shadow", actor="trainer",
                                                   reason=verdict.reason)
                await publish_model(self.producer, self.topics, changed)
            SHADOW_DECISIONS.labels(shadow.stream, shadow.task, verdict.outcome).inc()
            log.info("shadow_judged", stream=shadow.stream, task=shadow.task, model_id=shadow.id,
                     outcome=verdict.outcome, reason=verdict.reason)
            done.append((changed, verdict))
        return done
