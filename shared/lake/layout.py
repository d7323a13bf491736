"""Names in the lake.

``<kind>/stream=<stream>/date=<YYYY-MM-DD>/<kind>-<part>-<from>-<to>.parquet``:
one file per segment (a planned range of source rows) and date, named by
the segment's bounds, so redoing a segment writes the same names again
(replacing, never adding). Temporary copies live under ``_tmp/``, which
readers of the dataset skip.
"""

from __future__ import annotations

from datetime import date

FEATURES = "features"
PREDICTIONS = "predictions"
ALERTS = "alerts"
HISTORY = "history"
KINDS = (FEATURES, PREDICTIONS, ALERTS, HISTORY)
TEMPORARY_ROOT = "_tmp"


def kind_dir(kind: str, stream: str) -> str:
    return f"{kind}/stream={stream}"


def file_path(kind: str, stream: str, day: date, part: int, cursor_from: int, cursor_to: int) -> str:
    return f"{kind_dir(kind, stream)}/date={day.isoformat()}/{kind}-{part}-{cursor_from}-{cursor_to}.parquet"


def temporary_dir(segment_id: int) -> str:
    return f"{TEMPORARY_ROOT}/segment-{segment_id}"


def temporary_path(segment_id: int, day: date) -> str:
    return f"{temporary_dir(segment_id)}/{day.isoformat()}.parquet"
