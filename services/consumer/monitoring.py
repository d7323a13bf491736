"""Drift and degradation of each champion, measured as it scores, and the
retrains they trigger.

- Feature drift: the population stability index of each input over the last
  ``CONSUMER_MONITOR_WINDOW`` scored events against the bins fixed when the
  model was trained (shared.ml.drift).
- Degradation: the rolling error of its labelled predictions (mean absolute
  error, or the share wrong for classification) over the error it had on its
  validation rows.

Both are Prometheus gauges, written to the model's registry row
(``models.monitoring``) every few seconds, and compared with the task's
declared ``monitor`` policy: a threshold crossed (after ``min_events``) and
still crossed ``retrain_window`` events later sends a train command with
trigger ``drift`` or ``degradation`` on the newest ``retrain_window`` events
(so the retrain learns from the events after the change), at most once per
``cooldown`` per task and never while an earlier one is still queued or
running (checked in the registry too, so replicas and restarts do not repeat
it).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from dataclasses import dataclass

import asyncpg
import numpy as np
import structlog
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Gauge

from services.consumer.scoring import TaskScores
from shared.events import TrainCommand
from shared.kafka.clients import event_message, send_all
from shared.ml import registry
from shared.ml.drift import DriftMonitor
from shared.ml.serving import ServingModel
from shared.streams import TaskKind, TaskSpec
from shared.streams.catalog import Catalog
from shared.topics import Topics

log = structlog.get_logger(__name__)

FEATURE_DRIFT = Gauge("fluxo_feature_drift_psi", "PSI of an input of the champion against its training rows.",
                      ["stream", "task", "feature"])
MAX_DRIFT = Gauge("fluxo_model_drift_psi", "Largest input PSI of the champion.", ["stream", "task"])
DEGRADATION = Gauge("fluxo_model_degradation_ratio", "Rolling live error of the champion over its validation error.",
                    ["stream", "task"])
TRIGGERS = Counter("fluxo_retrain_triggers_total", "Retrains asked for by drift or degradation.",
                   ["stream", "task", "trigger"])

DRIFT = "drift"
DEGRADED = "degradation"


def validation_error(task: TaskSpec, model: ServingModel) -> float | None:
    metrics = model.meta.metrics
    if task.kind is TaskKind.REGRESSION:
        return metrics.get("mae")
    if task.kind is TaskKind.CLASSIFICATION and "accuracy" in metrics:
        return 1.0 - metrics["accuracy"]
    return None


@dataclass
class ModelMonitor:
    task: TaskSpec
    model: ServingModel
    drift: DriftMonitor
    errors: deque[float]
    scored: int = 0
    crossed_at: int | None = None  # events scored when a threshold was first crossed

    @classmethod
    def of(cls, task: TaskSpec, model: ServingModel, window: int) -> ModelMonitor:
        return cls(task, model, DriftMonitor(model.meta.inputs, model.meta.drift, window), deque(maxlen=window))

    def observe(self, result: TaskScores) -> None:
        if result.complete is not None and len(result.complete):
            self.drift.update(result.complete)
        self.scored += len(result.rows)
        self.errors.extend(np.abs(result.error[np.isfinite(result.error)]).tolist())

    def late(self, errors: list[float]) -> None:
        self.errors.extend(abs(e) for e in errors)

    def state(self) -> dict[str, float | int | dict[str, float] | None]:
        psi = self.drift.values()
        rolling = float(np.mean(self.errors)) if self.errors else None
        reference = validation_error(self.task, self.model)
        ratio = None
        if rolling is not None and reference is not None:
            ratio = rolling / max(reference, 1e-9)
        return {"psi": psi, "max_psi": max(psi.values(), default=0.0), "rolling_error": rolling,
                "validation_error": reference, "degradation": ratio, "scored": self.scored,
                "labelled": len(self.errors),
                "since_crossing": None if self.crossed_at is None else self.scored - self.crossed_at}

    def crossing(self) -> tuple[str, str] | None:
        """(trigger, reason) while a threshold of the task's policy is crossed."""
        policy = self.task.monitor
        if not policy.enabled:
            return None
        state = self.state()
        if self.drift.seen >= policy.min_events and state["max_psi"] > policy.psi:  # type: ignore[operator]
            feature = max(state["psi"], key=state["psi"].get)  # type: ignore[arg-type, union-attr]
            return DRIFT, f"input {feature!r} drifted: PSI {state['max_psi']:.3f} > {policy.psi:g}"
        ratio = state["degradation"]
        if len(self.errors) >= policy.min_events and ratio is not None and ratio > policy.degradation:  # type: ignore[operator]
            return DEGRADED, (f"rolling error {state['rolling_error']:.4g} is {ratio:.2f}x the validation error "
                              f"{state['validation_error']:.4g} (> {policy.degradation:g}x)")
        return None

    def verdict(self) -> tuple[str, str] | None:
        """(trigger, reason) when the task's policy says to retrain: a threshold
        crossed, and still crossed ``retrain_window`` events later. Retraining
        at once would learn mostly from the events before the change; waiting
        makes the retrain's window (the newest ``retrain_window`` events) the
        events after it."""
        crossed = self.crossing()
        if crossed is None:
            self.crossed_at = None
            return None
        if self.crossed_at is None:
            self.crossed_at = self.scored
        since = self.scored - self.crossed_at
        if since < self.task.monitor.retrain_window:
            return None
        trigger, reason = crossed
        return trigger, f"{reason}, for the {since} events since it was first crossed"


class Monitoring:
    def __init__(self, catalog: Catalog, window: int) -> None:
        self.catalog = catalog
        self.window = window
        self.monitors: dict[tuple[str, str], ModelMonitor] = {}
        self._last_trigger: dict[tuple[str, str], float] = {}

    def observe(self, stream: str, results: list[TaskScores], models: dict[tuple[str, str], ServingModel]) -> None:
        for result in results:
            key = (stream, result.task.name)
            model = models.get(key)
            if model is None or result.prediction is None:
                continue
            monitor = self.monitors.get(key)
            if monitor is None or monitor.model is not model:
                monitor = self.monitors[key] = ModelMonitor.of(result.task, model, self.window)
                # Zero, not absent, so "no retrain asked for" shows as 0.
                for trigger in (DRIFT, DEGRADED):
                    TRIGGERS.labels(stream, result.task.name, trigger)
            monitor.observe(result)

    def late(self, stream: str, task: str, model_version: int, errors: list[float]) -> None:
        """Errors of champion predictions that a late label revealed."""
        monitor = self.monitors.get((stream, task))
        if monitor is not None and monitor.model.version == model_version:
            monitor.late(errors)

    async def run(self, pool: asyncpg.Pool, producer: AIOKafkaProducer, topics: Topics, stop: asyncio.Event,
                  interval: float = 5.0) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
            try:
                await self.tick(pool, producer, topics)
            except Exception as error:  # noqa: BLE001 - monitoring must not stop scoring; the next tick tries again
                log.warning("monitoring_failed", error=f"{type(error).__name__}: {error}")

    async def tick(self, pool: asyncpg.Pool, producer: AIOKafkaProducer, topics: Topics) -> list[TrainCommand]:
        sent = []
        for (stream, task), monitor in list(self.monitors.items()):
            state = monitor.state()
            for feature, value in (state["psi"] or {}).items():  # type: ignore[union-attr]
                FEATURE_DRIFT.labels(stream, task, feature).set(value)
            MAX_DRIFT.labels(stream, task).set(float(state["max_psi"] or 0.0))  # type: ignore[arg-type]
            if state["degradation"] is not None:
                DEGRADATION.labels(stream, task).set(float(state["degradation"]))  # type: ignore[arg-type]
            if monitor.model.model_id is not None:
                async with asyncio.timeout(10):
                    await registry.update_monitoring(pool, monitor.model.model_id, _json(state))
            verdict = monitor.verdict()
            if verdict is not None:
                command = await self._trigger(pool, producer, topics, stream, monitor, *verdict)
                if command is not None:
                    sent.append(command)
        return sent

    async def _trigger(self, pool: asyncpg.Pool, producer: AIOKafkaProducer, topics: Topics, stream: str,
                       monitor: ModelMonitor, trigger: str, reason: str) -> TrainCommand | None:
        task = monitor.task
        key = (stream, task.name)
        cooldown = task.monitor.cooldown
        if time.monotonic() - self._last_trigger.get(key, -math.inf) < cooldown:
            return None
        # Besides the cooldown, a retrain already asked for and not finished
        # (queued or running) holds back another: a trainer that is down or
        # slower than the cooldown would otherwise find one retrain per
        # cooldown piled up for the same change. And a champion the registry
        # has already replaced (the retrain activated, this consumer has not
        # swapped yet) is not judged again.
        async with asyncio.timeout(10):
            held = await pool.fetchval(
                """SELECT EXISTS (SELECT 1 FROM training_runs WHERE stream = $1 AND task = $2
                                  AND trigger IN ('drift', 'degradation')
                                  AND (requested_at > now() - make_interval(secs => $3)
                                       OR status IN ('queued', 'running')))
                       OR EXISTS (SELECT 1 FROM models WHERE id = $4 AND NOT active)""",
                stream, task.name, float(cooldown), monitor.model.model_id,
            )
        self._last_trigger[key] = time.monotonic()
        if held:
            return None
        command = TrainCommand(stream=stream, task=task.name, window=task.monitor.retrain_window, trigger=trigger,
                               reason=f"model v{monitor.model.version}: {reason}")
        async with asyncio.timeout(10):
            await registry.queue_run(pool, command.run_id, stream, task.name, None,
                                     {"window": command.window, "reason": command.reason}, trigger)
            await send_all(producer, [event_message(topics.commands, command, f"{stream}/{task.name}")])
        TRIGGERS.labels(stream, task.name, trigger).inc()
        log.warning("retrain_triggered", stream=stream, task=task.name, trigger=trigger, reason=reason,
                    run_id=command.run_id)
        return command


def _json(state: dict) -> dict:
    out = {}
    for name, value in state.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[name] = value
    return out
