"""The gateway's Prometheus metrics and the ASGI middleware that records requests.

Routes are labelled by their template (``/models/{model_id}``), never by the
raw path, so a scan of random URLs cannot blow up the label set.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "fluxo_gateway_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "fluxo_gateway_request_latency_seconds",
    "Time from request to the last byte of the answer.",
    ["method", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PREDICTIONS_SERVED = Counter(
    "fluxo_gateway_predictions_served_total", "Rows scored for a caller.", ["stream", "task"]
)
MODEL_VERSION = Gauge(
    "fluxo_gateway_model_version", "Version of the model loaded for serving (0: none).", ["stream", "task"]
)
MODEL_RELOADS = Counter(
    "fluxo_gateway_model_reloads_total", "Model loads from the registry, by outcome.", ["outcome"]
)
UPLOAD_ROWS = Counter(
    "fluxo_gateway_upload_rows_total", "Uploaded rows, accepted or rejected.", ["stream", "outcome"]
)

UNMATCHED = "<unmatched>"


class MetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            # The router writes the matched route into the scope it was given.
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            method = scope.get("method", "")
            REQUESTS.labels(method, template, str(status)).inc()
            LATENCY.labels(method, template).observe(time.perf_counter() - started)
