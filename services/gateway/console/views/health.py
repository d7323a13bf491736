"""The services' health, as far as the gateway can know it.

- gateway: its own /ready (Kafka, PostgreSQL, models in step with the registry);
- Kafka: whether the console's last sample of offsets was answered;
- normalizer, consumer, trainer: their consumer groups' members on the broker
  (a group with members is a running service; one without is down);
- generator: it reads nothing, so it has no group to ask: the console shows
  how fast raw events arrive, from it or from any other producer, and says
  it does not know.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson

from services.gateway.console.live.runtime import ConsoleRuntime
from services.gateway.console.live.sampler import WORKER_GROUPS
from services.gateway.routes import ops
from services.gateway.state import GatewayState

UP, DOWN, DEGRADED, UNKNOWN = "up", "down", "degraded", "unknown"


@dataclass(frozen=True)
class ServiceState:
    name: str
    status: str
    detail: str


@dataclass(frozen=True)
class Health:
    services: list[ServiceState]

    @property
    def kafka_down(self) -> bool:
        return any(s.name == "kafka" and s.status == DOWN for s in self.services)


def _ago(at: float | None) -> str:
    if at is None:
        return "never"
    seconds = max(time.time() - at, 0)
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"


def kafka_state(runtime: ConsoleRuntime) -> ServiceState:
    sampler = runtime.sampler
    if sampler.kafka_up is None:
        return ServiceState("kafka", UNKNOWN, "not asked yet (the console samples it every few seconds)")
    if sampler.kafka_up:
        return ServiceState("kafka", UP, f"answered {_ago(sampler.last_ok_at)}")
    return ServiceState("kafka", DOWN, f"{sampler.error}; last answered {_ago(sampler.last_ok_at)}")


def worker_states(runtime: ConsoleRuntime, kafka: ServiceState) -> list[ServiceState]:
    states = []
    for worker, _ in WORKER_GROUPS:
        groups = runtime.sampler.workers.get(worker)
        if kafka.status != UP:
            states.append(ServiceState(worker, UNKNOWN, "Kafka does not answer, so its consumer group cannot be asked"))
        elif groups is None:
            states.append(ServiceState(worker, UNKNOWN, "no consumer group of it on the broker: not started yet, "
                                                         "or its group was renamed"))
        elif groups.members:
            states.append(ServiceState(worker, UP, f"{groups.members} member(s) in {', '.join(groups.groups)} "
                                                   f"({', '.join(sorted(set(groups.states)))})"))
        else:
            states.append(ServiceState(worker, DOWN, f"no member in {', '.join(groups.groups)}"))
    return states


def generator_state(state: GatewayState, runtime: ConsoleRuntime) -> ServiceState:
    rates = [runtime.sampler.rate(state.topics.raw(name)) for name in state.catalog.names()]
    known = [rate for rate in rates if rate is not None]
    if not known:
        return ServiceState("generator", UNKNOWN, "it has no consumer group to ask; no raw event rate measured yet")
    return ServiceState("generator", UNKNOWN, f"it has no consumer group to ask; raw events arrive at "
                                              f"{sum(known):.1f}/s (from it or any other producer)")


async def gateway_state(state: GatewayState) -> tuple[ServiceState, ServiceState]:
    """The gateway's own /ready, and what it says of PostgreSQL."""
    body = orjson.loads((await ops.ready(state)).body)
    postgres = ServiceState("postgres", UP if body["postgres"] else DOWN,
                            "answers" if body["postgres"] else "no answer within READY_TIMEOUT_SECONDS")
    if body["ready"]:
        return ServiceState("gateway", UP, f"ready; {len(body['models'])} model(s) loaded"), postgres
    missing = [name for name in ("kafka", "postgres", "models_synced") if not body[name]]
    return ServiceState("gateway", DEGRADED, "not ready: " + ", ".join(missing)), postgres


async def services_health(state: GatewayState, runtime: ConsoleRuntime) -> Health:
    gateway, postgres = await gateway_state(state)
    kafka = kafka_state(runtime)
    return Health([gateway, kafka, postgres, *worker_states(runtime, kafka), generator_state(state, runtime)])
