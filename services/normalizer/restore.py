"""Restoring the normalizer's state when it is given partitions: at start,
and when a rebalance hands it partitions another member had.

For each new raw partition with a committed offset C:
1. the window of every key whose newest reading came from that partition is
   installed from the ``windows`` changelog (unless this member already holds
   the key), with the offsets it counts up to;
2. the raw records from where every restored window is complete (the scaler
   snapshot's ``windows_offsets``; without it, the partition's start) up to C are replayed into the state only: a reading
   enters a window that does not hold it yet, and the scaler restored at
   start-up when it is past the scaler's ``offsets``. Nothing is produced:
   those records' outputs went out before their offsets were committed;
3. the normalizer then goes on from C with the state it had when it
   committed C, so a record delivered again after the restart (handled,
   not committed) gets the rolling statistics it got the first time.

The replay is bounded (NORMALIZER_REPLAY_MAX_RECORDS, NORMALIZER_RESTORE_TIMEOUT_SECONDS);
past either the windows resume from the checkpoint without the records in
between, which the log and ``fluxo_normalizer_replay_skipped_total`` say.
A partition with nothing committed is read from its start, state and all.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from services.normalizer import metrics
from services.normalizer.checkpoint import read_scaler_snapshots, read_window_snapshots
from services.normalizer.handler import Normalizer, Restored
from shared.events import ScalerSnapshot, WindowSnapshot
from shared import retry
from shared.kafka.loop import DEFAULT_TRANSIENT
from shared.kafka.reading import read_ranges
from shared.topics import Topics

log = structlog.get_logger(__name__)


class StateRestorer(ConsumerRebalanceListener):
    def __init__(
        self,
        normalizer: Normalizer,
        consumer: AIOKafkaConsumer,
        bootstrap: str,
        topics: Topics,
        client_id: str,
        *,
        startup_scalers: dict[str, ScalerSnapshot],
        max_replay: int,
        timeout: float,
    ) -> None:
        self.normalizer = normalizer
        self.consumer = consumer
        self.bootstrap = bootstrap
        self.topics = topics
        self.client_id = client_id
        # The scalers restored at start, and the offsets they count up to:
        # used by the first replay of each stream only.
        self.startup_scalers = dict(startup_scalers)
        self.max_replay = max_replay
        self.timeout = timeout
        self.held: set[TopicPartition] = set()

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Every rebalance revokes everything first; what is really lost is
        # known at the assignment.
        return

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        assigned_set = set(assigned)
        self.normalizer.forget(sorted(self.held - assigned_set))
        new = sorted(assigned_set - self.held, key=lambda tp: (tp.topic, tp.partition))
        self.held = assigned_set
        if not new:
            return
        try:
            async with self.normalizer.restoring:
                await self.restore(new)
        except Exception:  # noqa: BLE001 - the stream goes on; its windows start from what this member holds
            log.error("normalizer_restore_failed", partitions=[str(tp) for tp in new], exc_info=True)
            for tp in new:
                metrics.REPLAY_SKIPPED.labels(self.topics.stream_of(tp.topic)).inc()

    async def _read_checkpoint(
        self, new: list[TopicPartition]
    ) -> tuple[dict[TopicPartition, int], dict[str, ScalerSnapshot], list[WindowSnapshot]]:
        """The committed offsets of ``new`` and the checkpoint (nothing changed yet)."""
        async with asyncio.timeout(self.timeout):
            committed = {tp: await self.consumer.committed(tp) for tp in new}
        resuming = {tp: offset for tp, offset in committed.items() if offset is not None}
        if not resuming:
            return {}, {}, []
        client = f"{self.client_id}-restore"
        snapshots = await read_scaler_snapshots(self.bootstrap, self.topics.scalers, client, timeout=self.timeout)
        windows = await read_window_snapshots(self.bootstrap, self.topics.windows, client, timeout=self.timeout)
        return resuming, snapshots, windows

    async def restore(self, new: list[TopicPartition]) -> None:
        normalizer = self.normalizer
        async def read() -> tuple[dict[TopicPartition, int], dict[str, ScalerSnapshot], list[WindowSnapshot]]:
            return await self._read_checkpoint(new)

        # Reading has no effect yet, so it is retried; the replay is not.
        resuming, snapshots, windows = await retry.retry(
            read, service=self.client_id, operation="state_restore",
            transient=lambda error: isinstance(error, DEFAULT_TRANSIENT), attempts=3,
        )
        if not resuming:
            return
        by_partition: dict[tuple[str, int], list[WindowSnapshot]] = defaultdict(list)
        for snapshot in windows:
            by_partition[(snapshot.stream, snapshot.partition)].append(snapshot)
        restored: dict[str, Restored] = {}
        ranges: dict[TopicPartition, tuple[int, int]] = {}
        for tp, resume in resuming.items():
            name = self.topics.stream_of(tp.topic)
            stream = normalizer.stream(name)
            if stream is None:
                continue
            state = restored.get(name)
            if state is None:
                state = restored[name] = Restored()
                started = self.startup_scalers.pop(name, None)
                if started is not None and started.offsets and started.version == stream.scaler.version:
                    state.scaler_cut = dict(started.offsets)
            groups = {group.name: group for group in stream.columns.groups.values() if group.windows is not None}
            installed = 0
            for snapshot in by_partition.get((name, tp.partition), []):
                group = groups.get(snapshot.group)
                if group is None or group.windows is None or group.windows.shape != snapshot.shape:
                    continue  # a window whose definition changed since starts afresh
                if snapshot.key in group.windows:
                    continue  # this member holds a newer state of it
                group.windows.install(snapshot.key, snapshot.state, tag=tp.partition)
                state.keys[(snapshot.group, snapshot.key)] = snapshot.applied
                installed += 1
            metrics.KEYS_RESTORED.labels(name).inc(installed)
            complete = snapshots[name].windows_offsets if name in snapshots else {}
            if tp.partition in complete:
                state.windows_cut[tp.partition] = complete[tp.partition]
                start = complete[tp.partition] + 1
            else:
                # No checkpoint covers this partition whole (its first one was
                # cut short, or it predates checkpoints): from its start.
                start = 0
            ranges[tp] = (min(start, resume), resume)
        await self._replay(ranges, restored)
        for tp, resume in resuming.items():
            normalizer.resume_at(tp, resume)
        log.info("normalizer_state_restored", partitions={str(tp): list(span) for tp, span in ranges.items()},
                 keys=sum(len(state.keys) for state in restored.values()))

    async def _replay(self, ranges: dict[TopicPartition, tuple[int, int]], restored: dict[str, Restored]) -> None:
        records = sum(end - start for start, end in ranges.values())
        if not records:
            return
        if records > self.max_replay:
            log.error("normalizer_replay_skipped", records=records, limit=self.max_replay,
                      hint="raise NORMALIZER_REPLAY_MAX_RECORDS or checkpoint more often (SCALER_PUBLISH_INTERVAL)")
            for tp, (start, end) in ranges.items():
                if end > start:
                    metrics.REPLAY_SKIPPED.labels(self.topics.stream_of(tp.topic)).inc()
            return
        async for batch in read_ranges(self.bootstrap, ranges, f"{self.client_id}-replay", timeout=self.timeout):
            self.normalizer.replay(batch, restored)
