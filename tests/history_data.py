"""Readings of the built-in pressure stream at chosen times, values and
sensors, as decoded features batches, for tests of the hourly history."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from aiokafka.structs import ConsumerRecord

from services.consumer.decode import StreamBatch, decode_batch
from services.consumer.scoring import TaskScores
from shared.events import FeaturesEvent
from shared.streams.catalog import Catalog
from shared.topics import Topics
from tests.ml.synthetic import features_events
from tests.streams import PRESSURE, STREAMS

TOPICS = Topics("t-")
CATALOG = Catalog(STREAMS.values())
HISTORY = PRESSURE.entity.history
ENTITY = PRESSURE.entity
WHEN = next(name for name in PRESSURE.context if PRESSURE.field(name).type.value == "datetime")


def readings(times: list[datetime], values: list[float], keys: list[str], deviations: list[float] | None = None,
             seed: int = 0) -> list[FeaturesEvent]:
    """Features events of the pressure stream: reading ``i`` of sensor
    ``keys[i]`` at ``times[i]`` with value ``values[i]``."""
    events = []
    for i, event in enumerate(features_events(PRESSURE, len(times), seed)):
        features = {**event.features, HISTORY.value: values[i]}
        if deviations is not None:
            features[HISTORY.deviation] = deviations[i]
        context = {**event.context, WHEN: times[i].isoformat(), PRESSURE.key: keys[i]}
        events.append(event.model_copy(update={"features": features, "context": context, "key": keys[i]}))
    return events


def batch_of(events: list[FeaturesEvent]) -> StreamBatch:
    values = [event.to_bytes() for event in events]
    records = [ConsumerRecord(TOPICS.features(PRESSURE.name), 0, i, 0, 0, b"k", v, None, 1, len(v), ())
               for i, v in enumerate(values)]
    batches, rejected = decode_batch(TOPICS, CATALOG, records)
    assert not rejected
    return batches[PRESSURE.name]


def alerting(rows: list[int], positive: list[bool]) -> TaskScores:
    """The pressure stream's alerting task's scores: ``rows`` scored, ``positive`` alerted."""
    task = next(task for task in PRESSURE.tasks if task.alert)
    n = len(rows)
    return TaskScores(task, "scored", 1, 1, np.array(rows, dtype=np.int64), np.array([1 if p else 0 for p in positive]),
                      np.zeros(n), None, np.full(n, np.nan), None, np.full(n, np.nan), positive=1)
