"""The console's sections, in the order the top bar lists them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    key: str  # what a page passes as `active` to mark its tab
    label: str
    path: str
    summary: str  # one line on the overview's card


SECTIONS = (
    Section("overview", "Overview", "/", "Every stream at a glance."),
    Section("streams", "Streams", "/streams", "Events arriving on each stream, live."),
    Section("sensors", "Sensors", "/sensors", "Pressure sensors, their deviations and alerts."),
    Section("predict", "Predict", "/predict", "Score records with the active models."),
    Section("data", "Data & training", "/data", "Upload CSV or XLSX data and train on demand."),
    Section("models", "Models", "/models", "The model registry: versions and metrics."),
)
