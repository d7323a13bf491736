"""Drift: shift chosen streams' distributions so the system's reaction
(falling live accuracy, retraining) can be watched.

Switched on at GENERATOR_DRIFT_AT seconds after start and toggled by SIGUSR1
(``kill -USR1 <pid>``). A signal rather than a command on the commands topic
keeps that topic's single event type (TrainCommand) as it is for the trainer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import structlog

from services.generator import metrics
from services.generator.base import Source

log = structlog.get_logger(__name__)


class DriftControl:
    def __init__(self, sources: Mapping[str, Source], streams: Iterable[str], magnitude: float) -> None:
        self.sources = {name: sources[name] for name in streams if name in sources}
        self.magnitude = magnitude
        self.active = False
        for name in self.sources:
            metrics.DRIFT_ACTIVE.labels(name).set(0)

    def set(self, active: bool, reason: str) -> None:
        self.active = active
        for name, source in self.sources.items():
            source.drift = self.magnitude if active else 0.0
            metrics.DRIFT_ACTIVE.labels(name).set(1 if active else 0)
        log.info("drift", active=active, streams=list(self.sources), magnitude=self.magnitude, reason=reason)

    def toggle(self) -> bool:
        self.set(not self.active, reason="signal")
        return self.active
