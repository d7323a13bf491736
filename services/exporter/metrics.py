"""The exporter's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EXPORTS = Counter("fluxo_exports_total", "Export runs finished, by trigger and outcome (done, failed).",
                  ["trigger", "outcome"])
EXPORT_FAILURES = Counter(
    "fluxo_export_failures_total",
    "Failed exports by reason: destination (the bucket or directory), kafka, database, internal.",
    ["reason"],
)
EXPORT_FILES = Counter("fluxo_export_files_total", "Parquet files committed, by stream and kind.", ["stream", "kind"])
EXPORT_ROWS = Counter("fluxo_export_rows_total", "Rows written to committed files, by stream and kind.",
                      ["stream", "kind"])
EXPORT_LAST_SUCCESS = Gauge("fluxo_export_last_success_timestamp_seconds", "When the last export finished without error.")
EXPORT_DURATION = Histogram(
    "fluxo_export_duration_seconds", "Time an export run took.", buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
)
