"""Prometheus metrics shared by every service, declared once at module level.

Labels stay low-cardinality: service, topic, stream, task. Each worker
serves them on its own /metrics port (``start_metrics_server``); the gateway
mounts them on its ASGI app instead.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

EVENTS_IN = Counter("fluxo_events_in_total", "Messages consumed.", ["service", "topic"])
EVENTS_OUT = Counter("fluxo_events_out_total", "Messages produced and acknowledged.", ["service", "topic"])
EVENTS_DEADLETTERED = Counter(
    "fluxo_events_deadlettered_total", "Messages sent to the dead-letter topic.", ["service", "topic"]
)
HANDLER_LATENCY = Histogram(
    "fluxo_handler_latency_seconds",
    "Time to handle one consumed batch, output acknowledged and offsets committed.",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "fluxo_batch_size_events",
    "Messages per consumed batch.",
    ["service"],
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
CONSUMER_LAG = Gauge(
    "fluxo_consumer_lag_events",
    "End offset minus committed offset, per partition.",
    ["service", "topic", "partition"],
)
COMMIT_FAILURES = Counter(
    "fluxo_commit_failures_total", "Offset commits refused, e.g. by a rebalance.", ["service"]
)
HANDLER_RETRIES = Counter(
    "fluxo_handler_retries_total", "Batches retried after a transient error.", ["service"]
)

STREAM_BLOCKED = Gauge(
    "fluxo_stream_blocked",
    "1 while a worker retries a batch it cannot deliver for a non-transient reason (unknown topic, "
    "authorization, size refused): an operator must act; 0 otherwise.",
    ["service"],
)


def start_metrics_server(port: int, host: str = "127.0.0.1") -> None:
    if port:
        start_http_server(port, addr=host)
