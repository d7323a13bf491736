"""Benchmarks: what Fluxo exists for, measured beside its baselines in one run.

``make bench`` (``python -m bench``) runs them against real Kafka and
PostgreSQL and writes bench/results/latest.json plus a dated copy.
Benchmarks are not tests: nothing here asserts a timing.
"""
