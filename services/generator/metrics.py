"""The generator's own metrics (acknowledged sends also count in shared.metrics.EVENTS_OUT)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

GENERATED = Counter(
    "fluxo_generator_events_total", "Events generated and acknowledged, by validity.", ["stream", "validity"]
)
DRIFT_ACTIVE = Gauge("fluxo_generator_drift_active", "1 while a stream's distribution is shifted.", ["stream"])
