"""The registry page's data: models with their key metric and aliases, and runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.gateway.console.views import models as registry
from services.gateway.console.views.guard import Outage, guarded
from services.gateway.state import GatewayState
from shared.ml.registry import ModelRecord
from shared.streams import TaskSpec

MODELS_SHOWN = 200
RUNS_SHOWN = 30


@dataclass(frozen=True)
class ModelRow:
    record: ModelRecord
    roles: list[str]
    metric: str
    value: float | None
    loaded: bool  # this gateway serves it

    @property
    def drift(self) -> float | None:
        """Largest input PSI the consumer measured while it served the model."""
        return self.record.monitoring.get("max_psi")

    @property
    def degradation(self) -> float | None:
        """Rolling live error over validation error, once labelled events were scored."""
        return self.record.monitoring.get("degradation")

    @property
    def other_metrics(self) -> list[tuple[str, float]]:
        """The other metrics, without the negated copies the champion gate compares on."""
        return sorted((name, value) for name, value in self.record.metrics.items()
                      if name != self.metric and not name.startswith("neg_"))


@dataclass(frozen=True)
class RegistryView:
    models: list[ModelRow] | Outage
    runs: list[dict[str, Any]] | Outage


def _task(state: GatewayState, record: ModelRecord) -> TaskSpec | None:
    declared = state.catalog.entry(record.stream)
    if declared is None:
        return None
    return next((task for task in declared.spec.tasks if task.name == record.task), None)


def model_rows(state: GatewayState, records: list[ModelRecord]) -> list[ModelRow]:
    rows = []
    for record in records:
        metric, value = registry.key_metric(record, _task(state, record))
        served = state.models.get(record.stream, record.task)
        rows.append(ModelRow(record, registry.roles(record), metric, value,
                             served is not None and served.model_id == record.id))
    return rows


async def registry_view(state: GatewayState) -> RegistryView:
    timeout = state.settings.dependency_timeout_seconds
    records = await guarded("models", timeout, registry.models(state.pool, None, MODELS_SHOWN))
    runs = await guarded("training runs", timeout, registry.recent_runs(state.pool, RUNS_SHOWN))
    return RegistryView(records if isinstance(records, Outage) else model_rows(state, records), runs)
