"""The normalizer's batch handler: raw records in, features events and
rejections out. No I/O, so it is tested and benchmarked without a broker.

Per batch: decode each record's envelope (orjson), group by stream, validate
each stream's records as columns (shared.validation), compute the stream's
numeric columns (shared.features.columns: time parts, derived fields,
rolling statistics), update the stream's online scaler with its features
and scale them, then encode one features event per valid record (encode.py).
A record delivered again (a rewound or isolated batch) gets the answer it
got the first time, without touching the state again (redelivery.py).

The state survives a restart or a rebalance: it is checkpointed where it
agrees with the committed offsets (checkpoint.py) and restored, then brought
up to the committed offsets by replaying the raw records in between
(:meth:`Normalizer.replay`, restore.py), so a record delivered again after a
restart gets the rolling statistics it got the first time.

Streams come from the catalog, which changes while the service runs: a
stream seen for the first time gets its state; a new version of a stream
keeps the rolling windows and the scaler it can keep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from aiokafka.structs import ConsumerRecord, TopicPartition

from services.normalizer import metrics
from services.normalizer.encode import FeaturesEncoder
from services.normalizer.envelope import Envelope, EnvelopeInvalid, decode
from services.normalizer.redelivery import RecentOutcomes
from shared.features.columns import RollingGroup, StreamColumns
from shared.features.scaler import OnlineScaler, ScalerState
from shared.kafka.messages import HandlerResult, Rejected
from shared.streams import StreamSpec
from shared.streams.catalog import Catalog
from shared.topics import Topics
from shared.validation import validate_batch


@dataclass
class Restored:
    """What a replay needs to know about a stream's restored state.

    ``keys``: (rolling group, key) -> the raw offsets its restored window
    counts up to (partition -> offset); ``windows_cut``: the offsets every
    restored window counts up to at least. A replayed reading at or below
    either is in the window already. ``scaler_cut``: the offsets the
    restored scaler counts up to, or None when the scaler was not restored
    with these partitions (it then learns only from live records)."""

    keys: dict[tuple[str, str], dict[int, int]] = field(default_factory=dict)
    windows_cut: dict[int, int] = field(default_factory=dict)
    scaler_cut: dict[int, int] | None = None


class StreamNormalizer:
    """One stream's state: its column builder (rolling windows) and scaler."""

    def __init__(self, spec: StreamSpec, topic: str, *, max_keys: int) -> None:
        self.spec = spec
        self.columns = StreamColumns(spec, max_keys=max_keys)
        self.scaler = OnlineScaler(spec.scaled_features)
        self.encoder = FeaturesEncoder(spec, topic)

    def evolve(self, spec: StreamSpec, topic: str, *, max_keys: int) -> StreamNormalizer:
        """The normalizer of a new version of this stream, keeping the rolling
        windows whose definition did not change and the scaler if its
        features are the same."""
        evolved = StreamNormalizer(spec, topic, max_keys=max_keys)
        for key, group in evolved.columns.groups.items():
            old = self.columns.groups.get(key)
            if old is not None and old.windows is not None and group.windows is not None:
                if [(r.window, r.stat) for r in old.specs] == [(r.window, r.stat) for r in group.specs]:
                    group.windows = old.windows
        if self.scaler.features == evolved.scaler.features:
            evolved.scaler = self.scaler
        return evolved

    def handle(self, records: list[ConsumerRecord], envelopes: list[Envelope], result: HandlerResult,
               sources: list[ConsumerRecord]) -> None:
        """Appends to ``result``, and the record of each output to ``sources``."""
        batch = validate_batch(self.spec, [envelope.data for envelope in envelopes])
        for position, reason in batch.reasons.items():
            result.rejected.append(Rejected(records[envelopes[position].index], reason))
        if batch.reasons:
            metrics.EVENTS_REJECTED.labels(self.spec.name, "field").inc(len(batch.reasons))
        rows = batch.valid_indices
        if not len(rows):
            return
        partitions = [records[envelope.index].partition for envelope in envelopes]
        numbers = self.columns.compute(batch, rows, partitions=partitions)
        infinite = np.zeros(len(rows), dtype=bool)
        for name, values in numbers.items():
            bad = np.isinf(values)
            if bad.any():
                for position in np.flatnonzero(bad & ~infinite).tolist():
                    reason = f"{name}: computed value is infinite (a division by zero?)"
                    result.rejected.append(Rejected(records[envelopes[int(rows[position])].index], reason))
                infinite |= bad
        if infinite.any():
            metrics.EVENTS_REJECTED.labels(self.spec.name, "feature").inc(int(infinite.sum()))
            keep = ~infinite
            rows = rows[keep]
            numbers = {name: values[keep] for name, values in numbers.items()}
            if not len(rows):
                return
        matrix = np.column_stack([numbers[name] for name in self.spec.scaled_features]) if self.spec.scaled_features else np.empty((len(rows), 0))
        scaled = self.scaler.partial_fit_transform(matrix)
        metrics.SCALER_VERSION.labels(self.spec.name).set(self.scaler.version)
        result.outputs.extend(self.encoder.encode(batch.columns, rows, numbers, scaled, self.scaler.version, envelopes))
        sources.extend(records[envelopes[row].index] for row in rows.tolist())

    def replay(self, records: list[ConsumerRecord], envelopes: list[Envelope], restored: Restored) -> None:
        """Count records handled before a restart into the windows and the
        scaler that do not hold them yet, exactly as :meth:`handle` did the
        first time; nothing is produced."""
        batch = validate_batch(self.spec, [envelope.data for envelope in envelopes])
        rows = batch.valid_indices
        if not len(rows):
            return
        sources = [records[envelope.index] for envelope in envelopes]
        complete = restored.windows_cut

        def admits(group: RollingGroup, key: str, row: int) -> bool:
            record = sources[row]
            held = restored.keys.get((group.name, key), {})
            return record.offset > max(held.get(record.partition, -1), complete.get(record.partition, -1))

        # The scaler is never behind the windows (checkpoint.py), so a
        # reading it takes was admitted to its windows: its statistics are real.
        numbers = self.columns.compute(batch, rows, admits=admits,
                                       partitions=[record.partition for record in sources])
        if restored.scaler_cut is None or not self.spec.scaled_features:
            return
        cut = restored.scaler_cut
        keep = np.array([sources[row].offset > cut.get(sources[row].partition, -1) for row in rows.tolist()])
        for values in numbers.values():
            keep &= ~np.isinf(values)
        if keep.any():
            matrix = np.column_stack([numbers[name][keep] for name in self.spec.scaled_features])
            self.scaler.partial_fit_transform(matrix)
            metrics.SCALER_VERSION.labels(self.spec.name).set(self.scaler.version)


class Normalizer:
    """The handler BatchLoop calls, for the catalog's streams this replica serves."""

    def __init__(
        self,
        topics: Topics,
        catalog: Catalog,
        *,
        serves: Callable[[str], bool] = lambda _: True,
        max_keys: int = 2000,
        restored: dict[str, ScalerState] | None = None,
        remembered: int = 20_000,
    ) -> None:
        self.topics = topics
        self.catalog = catalog
        self.serves = serves
        self.max_keys = max_keys
        self.restored = dict(restored or {})
        self.streams: dict[str, StreamNormalizer] = {}
        self._evictions_seen = 0
        self.recent = RecentOutcomes(remembered)
        # The last raw offset handled (live or replayed) and the last one
        # committed, per stream and partition: a checkpoint is only taken
        # where the two agree (services/normalizer/checkpoint.py).
        self.applied: dict[str, dict[int, int]] = {}
        self.committed: dict[str, dict[int, int]] = {}
        # Held by services/normalizer/restore.py while it restores state.
        self.restoring = asyncio.Lock()
        for spec in catalog.active():
            if serves(spec.name):
                self.stream(spec.name)

    def raw_topics(self) -> list[str]:
        """The raw topics of every active stream this replica serves."""
        return [self.topics.raw(name) for name in self.catalog.names() if self.serves(name)]

    def stream(self, name: str) -> StreamNormalizer | None:
        """The state of an active stream (created, or evolved to the catalog's version)."""
        if name not in self.catalog or not self.serves(name):
            self.streams.pop(name, None)
            return None
        spec = self.catalog.get(name)
        current = self.streams.get(name)
        if current is not None and current.spec == spec:
            return current
        topic = self.topics.features(name)
        if current is None:
            current = StreamNormalizer(spec, topic, max_keys=self.max_keys)
            snapshot = self.restored.pop(name, None)
            if snapshot is not None and tuple(snapshot.features) == current.scaler.features:
                current.scaler.restore(snapshot)
        else:
            current = current.evolve(spec, topic, max_keys=self.max_keys)
        self.streams[name] = current
        return current

    async def __call__(self, records: list[ConsumerRecord]) -> HandlerResult:
        # aiokafka fetches for new partitions while the rebalance listener
        # still restores their state: their records wait for it.
        async with self.restoring:
            return self.handle(records)

    def on_commit(self, offsets: dict[TopicPartition, int]) -> None:
        """BatchLoop committed ``offsets`` (the next offset to read, per partition)."""
        for tp, offset in offsets.items():
            self.committed.setdefault(self.topics.stream_of(tp.topic), {})[tp.partition] = offset - 1

    def settled(self) -> bool:
        """Is every record handled so far committed (no batch in flight or rewound)?"""
        return all(
            offset <= self.committed.get(stream, {}).get(partition, -1)
            for stream, partitions in self.applied.items()
            for partition, offset in partitions.items()
        )

    def forget(self, partitions: list[TopicPartition]) -> None:
        """Partitions lost to another member, which goes on from what was
        committed and restores their keys' windows: the windows of keys last
        seen on them are dropped here, so neither a stale copy is kept
        (should the partition come back) nor checkpointed over the new
        owner's."""
        lost: dict[str, set[int]] = {}
        for tp in partitions:
            stream = self.topics.stream_of(tp.topic)
            self.applied.get(stream, {}).pop(tp.partition, None)
            self.committed.get(stream, {}).pop(tp.partition, None)
            lost.setdefault(stream, set()).add(tp.partition)
            self.recent.forget(tp.topic, tp.partition)
        for stream, tags in lost.items():
            state = self.streams.get(stream)
            if state is None:
                continue
            for group in state.columns.groups.values():
                if group.windows is not None:
                    group.windows.drop_tagged(tags)

    def resume_at(self, tp: TopicPartition, committed: int) -> None:
        """The state now counts every record of ``tp`` before offset ``committed``."""
        stream = self.topics.stream_of(tp.topic)
        self.applied.setdefault(stream, {})[tp.partition] = committed - 1
        self.committed.setdefault(stream, {})[tp.partition] = committed - 1

    def _mark(self, records: list[ConsumerRecord]) -> None:
        newest: dict[tuple[str, int], int] = {}
        for record in records:
            newest[(record.topic, record.partition)] = record.offset  # a partition's records come in order
        for (topic, partition), offset in newest.items():
            applied = self.applied.setdefault(self.topics.stream_of(topic), {})
            if offset > applied.get(partition, -1):
                applied[partition] = offset

    def replay(self, records: list[ConsumerRecord], restored: dict[str, Restored]) -> None:
        """Records committed before a restart, handled again into the state only."""
        grouped: dict[str, list[Envelope]] = {}
        for index, record in enumerate(records):
            name = self.topics.stream_of(record.topic)
            if name not in restored or self.stream(name) is None:
                continue
            try:
                grouped.setdefault(name, []).append(decode(index, record.value, name))
            except EnvelopeInvalid:
                continue  # dead-lettered the first time; it changed no state
        for name, envelopes in grouped.items():
            self.streams[name].replay(records, envelopes, restored[name])
            metrics.EVENTS_REPLAYED.labels(name).inc(len(envelopes))

    def handle(self, records: list[ConsumerRecord]) -> HandlerResult:
        result = HandlerResult()
        fresh: list[ConsumerRecord] = []
        for record in records:
            outcome = self.recent.get(record)
            if outcome is None:
                fresh.append(record)
                continue
            metrics.EVENTS_REDELIVERED.labels(self.topics.stream_of(record.topic)).inc()
            if isinstance(outcome, str):
                result.rejected.append(Rejected(record, outcome))
            else:
                result.outputs.append(outcome)
        # Redelivered records come before the fresh ones of their partition,
        # so their answers go first: the order on the features topic holds.
        handled = self._handle(fresh)
        result.outputs.extend(handled.outputs)
        result.rejected.extend(handled.rejected)
        self._mark(records)
        return result

    def _handle(self, records: list[ConsumerRecord]) -> HandlerResult:
        result = HandlerResult()
        grouped: dict[str, list[Envelope]] = {}
        states: dict[str, StreamNormalizer] = {}
        for index, record in enumerate(records):
            name = self.topics.stream_of(record.topic)
            stream = states.get(name) or self.stream(name)
            if stream is None:
                reason = f"topic {record.topic!r} is the raw topic of no active stream this normalizer serves"
                result.rejected.append(Rejected(record, reason))
                continue
            states[name] = stream
            try:
                envelope = decode(index, record.value, name)
            except EnvelopeInvalid as error:
                result.rejected.append(Rejected(record, str(error)))
                metrics.EVENTS_REJECTED.labels(name, "envelope").inc()
                continue
            grouped.setdefault(name, []).append(envelope)
        sources: list[ConsumerRecord] = []
        for name, envelopes in grouped.items():
            states[name].handle(records, envelopes, result, sources)
        for record, output in zip(sources, result.outputs, strict=True):
            self.recent.remember(record, output)
        for rejected in result.rejected:
            self.recent.remember(rejected.record, rejected.reason)
        self._observe()
        return result

    def _observe(self) -> None:
        keys = evictions = 0
        for stream in self.streams.values():
            held, evicted = stream.columns.rolling_state()
            keys += held
            evictions += evicted
        metrics.ROLLING_KEYS.set(keys)
        if evictions > self._evictions_seen:
            metrics.ROLLING_EVICTIONS.inc(evictions - self._evictions_seen)
            self._evictions_seen = evictions
