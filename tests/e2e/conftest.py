"""Fixtures: a fresh database and topic prefix per test."""

from tests.ml.live import database, topics  # noqa: F401 - fixtures
