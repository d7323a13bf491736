"""Training on a dataset right after its upload: the scan reads past the end
offsets it started with until it holds every row the upload published, for
a bounded time, against a real broker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from services.trainer.dataset_scan import scan_dataset
from shared.kafka.admin import ensure_topics
from shared.topics import FEATURES
from tests.helpers import wait_for
from tests.live import produce
from tests.ml.synthetic import features_events
from tests.streams import PEOPLE


async def test_the_scan_waits_for_the_rest_of_an_upload_the_normalizer_is_still_writing(
    kafka_bootstrap: str, unique_name: Callable[..., str]
) -> None:
    topic = unique_name("features")
    await ensure_topics(kafka_bootstrap, [(topic, FEATURES)])
    rows = features_events(PEOPLE, 120, seed=8, dataset_id="upload-1")
    other = features_events(PEOPLE, 30, seed=9, dataset_id="upload-2")
    await produce(kafka_bootstrap, topic, rows[:60] + other)
    progress: dict = {}
    scan = asyncio.create_task(scan_dataset(kafka_bootstrap, topic, "upload-1", since=None, max_rows=10_000,
                                            timeout=60, client_id="test-scan", expected=120, wait=30,
                                            progress=progress))
    await wait_for(lambda: progress.get("caught_up"), timeout=30, message="the scan never reached the end offsets")
    assert not scan.done()  # 60 of 120 found: it waits for the rest
    await produce(kafka_bootstrap, topic, rows[60:] + rows[:10])  # the rest, and ten delivered twice
    found, where = await asyncio.wait_for(scan, timeout=60)
    assert sorted(r["event_id"] for r in found) == sorted(e.event_id for e in rows)
    assert (where["rows_expected"], where["rows_found"], where["complete"]) == (120, 120, True)


async def test_an_upload_that_never_completes_is_trained_on_as_found_and_says_so(
    kafka_bootstrap: str, unique_name: Callable[..., str]
) -> None:
    topic = unique_name("features")
    await ensure_topics(kafka_bootstrap, [(topic, FEATURES)])
    rows = features_events(PEOPLE, 40, seed=10, dataset_id="upload-3")
    await produce(kafka_bootstrap, topic, rows)
    found, where = await scan_dataset(kafka_bootstrap, topic, "upload-3", since=None, max_rows=10_000, timeout=30,
                                      client_id="test-scan", expected=50, wait=1.0)
    assert len(found) == 40
    assert (where["rows_expected"], where["rows_found"], where["complete"]) == (50, 40, False)
    assert where["waited_s"] >= 1.0
