"""A service's own /metrics, read once at the end of a phase: how many
batches its loop handled, how big they were and how long they took."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def parse_loop_metrics(text: str) -> dict[str, float]:
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in (
                "fluxo_handler_latency_seconds_sum",
                "fluxo_handler_latency_seconds_count",
                "fluxo_batch_size_events_sum",
                "fluxo_batch_size_events_count",
                "fluxo_events_in_total",
                "fluxo_events_out_total",
                "fluxo_events_deadlettered_total",
            ):
                sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    batches = sums.get("fluxo_batch_size_events_count", 0.0)
    handled = sums.get("fluxo_handler_latency_seconds_count", 0.0)
    return {
        "events_in": sums.get("fluxo_events_in_total", 0.0),
        "events_out": sums.get("fluxo_events_out_total", 0.0),
        "dead_letters": sums.get("fluxo_events_deadlettered_total", 0.0),
        "batches": batches,
        "mean_batch": round(sums.get("fluxo_batch_size_events_sum", 0.0) / batches, 1) if batches else 0.0,
        "handler_seconds": round(sums.get("fluxo_handler_latency_seconds_sum", 0.0), 2),
        "mean_handler_ms": round(1000 * sums.get("fluxo_handler_latency_seconds_sum", 0.0) / handled, 2)
        if handled
        else 0.0,
    }


def loop_metrics(port: int) -> dict[str, float] | None:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    except httpx.HTTPError:
        return None
    return parse_loop_metrics(response.text) if response.status_code == 200 else None
