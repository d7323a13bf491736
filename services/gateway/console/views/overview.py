"""The overview: each stream's rates, lag and models, and the services' health."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.gateway.console.live.runtime import ConsoleRuntime
from services.gateway.console.views.guard import Outage, guarded
from services.gateway.console.views.health import Health, services_health
from services.gateway.console.views.models import champions, key_metric, roles
from services.gateway.state import GatewayState
from shared.ml.registry import ModelRecord
from shared.streams.catalog import Declared


@dataclass(frozen=True)
class ModelLine:
    task: str
    kind: str
    version: int | None  # None: no model yet
    algorithm: str = ""
    metric: str = ""
    value: float | None = None
    age_seconds: float | None = None
    roles: tuple[str, ...] = ()
    served: bool = False  # this gateway has it loaded


@dataclass(frozen=True)
class StreamLine:
    name: str
    version: int
    status: str
    description: str
    events_per_second: float | None
    scored_per_second: float | None
    dead_letters_per_second: float | None
    lag: dict[str, int | None]  # worker -> messages behind on this stream's topic
    models: list[ModelLine] = field(default_factory=list)


@dataclass(frozen=True)
class Overview:
    streams: list[StreamLine]
    health: Health
    models_outage: Outage | None


def _model_lines(state: GatewayState, declared: Declared, active: dict[tuple[str, str], ModelRecord]) -> list[ModelLine]:
    lines = []
    now = datetime.now(UTC)
    for task in declared.spec.tasks:
        record = active.get((declared.spec.name, task.name))
        if record is None:
            lines.append(ModelLine(task.name, task.kind.value, None))
            continue
        metric, value = key_metric(record, task)
        loaded = state.models.get(record.stream, record.task)
        lines.append(ModelLine(
            task.name, task.kind.value, record.version, record.algorithm, metric, value,
            (now - record.created_at).total_seconds(), tuple(roles(record)),
            loaded is not None and loaded.model_id == record.id,
        ))
    return lines


async def overview(state: GatewayState, runtime: ConsoleRuntime) -> Overview:
    timeout = state.settings.dependency_timeout_seconds
    active = await guarded("models", timeout, champions(state.pool))
    registry = {} if isinstance(active, Outage) else active
    sampler, topics = runtime.sampler, state.topics
    now = time.time()
    lines = []
    for declared in sorted(state.catalog.entries(), key=lambda d: (not d.active, d.spec.name)):
        name = declared.spec.name
        window = runtime.tail.window(name)
        lag = {
            "normalizer": _lag(sampler.workers, "normalizer", topics.raw(name)),
            "consumer": _lag(sampler.workers, "consumer", topics.features(name)),
        }
        lines.append(StreamLine(
            name, declared.version, declared.status, declared.spec.description,
            sampler.rate(topics.raw(name)), sampler.rate(topics.predictions(name)),
            window.dead_letter_rate(now) if window is not None and runtime.reading else None,
            lag, _model_lines(state, declared, registry),
        ))
    health = await services_health(state, runtime)
    return Overview(lines, health, active if isinstance(active, Outage) else None)


def _lag(workers: dict, worker: str, topic: str) -> int | None:
    groups = workers.get(worker)
    return None if groups is None else groups.lag.get(topic)
