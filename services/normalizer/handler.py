"""The normalizer's batch handler: raw records in, features events and
rejections out. No I/O, so it is tested and benchmarked without a broker.

Per batch: decode each record's envelope (orjson), group by stream, validate
each stream's records as columns (shared.validation), build the feature
matrix (shared.features), update the stream's online scaler with it and
scale it, then encode one features event per valid record (encode.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from aiokafka.structs import ConsumerRecord

from services.normalizer import metrics
from services.normalizer.encode import FeaturesEncoder
from services.normalizer.envelope import Envelope, EnvelopeInvalid, decode
from shared.features.engineering import FeatureBuilder
from shared.features.scaler import OnlineScaler
from shared.kafka.messages import HandlerResult, Rejected
from shared.streams import StreamSpec
from shared.topics import Topics
from shared.validation import validate_batch


class StreamNormalizer:
    """One stream's state: its feature builder (sensor windows) and scaler."""

    def __init__(self, spec: StreamSpec, topic: str, *, max_sensors: int) -> None:
        self.spec = spec
        self.builder = FeatureBuilder(spec, max_sensors=max_sensors)
        self.scaler = OnlineScaler(spec.features)
        self.encoder = FeaturesEncoder(spec, topic)

    def handle(self, records: list[ConsumerRecord], envelopes: list[Envelope], result: HandlerResult) -> None:
        batch = validate_batch(self.spec, [envelope.data for envelope in envelopes])
        for position, reason in batch.reasons.items():
            result.rejected.append(Rejected(records[envelopes[position].index], reason))
        if batch.reasons:
            metrics.EVENTS_REJECTED.labels(self.spec.name, "field").inc(len(batch.reasons))
        rows = batch.valid_indices
        if not len(rows):
            return
        matrix = self.builder.build(batch, rows)
        finite = np.isfinite(matrix).all(axis=1)
        if not finite.all():
            # Only possible for an optional field used as a feature; keep the
            # scaler and the events free of NaN either way.
            for position in np.flatnonzero(~finite).tolist():
                bad = [n for n, x in zip(self.builder.names, matrix[position].tolist()) if not math.isfinite(x)]
                reason = f"{bad[0]}: feature is not a finite number"
                result.rejected.append(Rejected(records[envelopes[int(rows[position])].index], reason))
            metrics.EVENTS_REJECTED.labels(self.spec.name, "feature").inc(int((~finite).sum()))
            rows, matrix = rows[finite], matrix[finite]
            if not len(rows):
                return
        scaled = self.scaler.partial_fit_transform(matrix)
        metrics.SCALER_VERSION.labels(self.spec.name).set(self.scaler.version)
        result.outputs.extend(
            self.encoder.encode(batch.columns, rows, matrix, scaled, self.scaler.version, envelopes)
        )


class Normalizer:
    """The handler BatchLoop calls, for the streams this replica serves."""

    def __init__(self, topics: Topics, specs: Iterable[StreamSpec], *, max_sensors: int = 2000) -> None:
        self.streams: dict[str, StreamNormalizer] = {}
        self._by_topic: dict[str, StreamNormalizer] = {}
        self._evictions_seen = 0
        for spec in specs:
            stream = StreamNormalizer(spec, topics.features(spec.name), max_sensors=max_sensors)
            self.streams[spec.name] = stream
            self._by_topic[topics.raw(spec.name)] = stream

    @property
    def raw_topics(self) -> list[str]:
        return list(self._by_topic)

    async def __call__(self, records: list[ConsumerRecord]) -> HandlerResult:
        return self.handle(records)

    def handle(self, records: list[ConsumerRecord]) -> HandlerResult:
        result = HandlerResult()
        grouped: dict[str, list[Envelope]] = {}
        for index, record in enumerate(records):
            stream = self._by_topic.get(record.topic)
            if stream is None:
                reason = f"topic {record.topic!r} is not a raw topic of this normalizer"
                result.rejected.append(Rejected(record, reason))
                continue
            try:
                envelope = decode(index, record.value, stream.spec.name)
            except EnvelopeInvalid as error:
                result.rejected.append(Rejected(record, str(error)))
                metrics.EVENTS_REJECTED.labels(stream.spec.name, "envelope").inc()
                continue
            grouped.setdefault(stream.spec.name, []).append(envelope)
        for name, envelopes in grouped.items():
            self.streams[name].handle(records, envelopes, result)
        self._observe()
        return result

    def _observe(self) -> None:
        sensors = evictions = 0
        for stream in self.streams.values():
            engineer = stream.builder.engineer
            windows = getattr(engineer, "windows", None)
            if windows is not None:
                sensors += len(windows)
                evictions += windows.evictions
        metrics.SENSORS_TRACKED.set(sensors)
        if evictions > self._evictions_seen:
            metrics.SENSOR_EVICTIONS.inc(evictions - self._evictions_seen)
            self._evictions_seen = evictions
