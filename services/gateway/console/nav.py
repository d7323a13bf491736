"""The console's sections, in the order the top bar lists them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    key: str  # what a page passes as `active` to mark its tab
    label: str
    path: str
    summary: str  # one line on the overview's card


# Paths of their own: GET /sensors and GET /models are JSON API routes
# already, and a page must never shadow an API route (see README, "Web console").
SECTIONS = (
    Section("overview", "Overview", "/", "Every stream at a glance."),
    Section("streams", "Streams", "/streams", "Events and predictions on each stream, live."),
    Section("sensors", "Sensors", "/map", "Sensors at their place, coloured by alert state."),
    Section("predict", "Predict", "/predict-by-hand", "Score a record typed by hand."),
    Section("data", "Data & training", "/data", "Upload CSV or XLSX data, register streams, train models."),
    Section("registry", "Models", "/registry", "The model registry: versions, metrics, decisions."),
)
