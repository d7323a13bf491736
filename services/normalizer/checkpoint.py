"""The normalizer's checkpoints: its state, saved where it agrees with the
committed offsets, so a restarted or rebalanced normalizer resumes it.

At most every SCALER_PUBLISH_INTERVAL seconds, right after a commit (the
batch loop calls :meth:`Checkpointer.committed`; every record handled is then
committed: ``Normalizer.settled``), the state is taken at once, and sent in
the background while the next batch is handled. For each stream whose
committed offsets moved, in this order, each step acknowledged before the next:

1. the scaler snapshot, with the committed offsets (``offsets``, the cut)
   and the cut of the last checkpoint whose windows were all written
   (``windows_offsets``);
2. the rolling windows of the keys updated since the last checkpoint, to the
   compacted ``windows`` topic (key: stream, group, key), each stamped with
   the cut (``applied``), and a tombstone for each key evicted;
3. the scaler snapshot again, now with ``windows_offsets`` = the cut.

Whatever the moment a crash stops this, the restore (restore.py) knows how
far each part counts: the scaler up to ``offsets``; a window up to its own
``applied``, or up to ``windows_offsets`` if that is later (a key with no
reading since its snapshot). The replay then starts at ``windows_offsets``
and never needs a reading's statistics from a window that already holds it
(the scaler is never behind the windows).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import orjson
import structlog
from aiokafka import AIOKafkaProducer, TopicPartition

from services.normalizer import metrics
from services.normalizer.handler import Normalizer
from shared.events import ScalerSnapshot, WindowSnapshot
from shared.features.rolling import RollingWindows
from shared.features.scaler import OnlineScaler, ScalerState
from shared.kafka.clients import event_message, send_all
from shared.kafka.messages import Outgoing
from shared.kafka.reading import read_latest

log = structlog.get_logger(__name__)


def snapshot_event(
    stream: str, scaler: OnlineScaler, offsets: dict[int, int], windows_offsets: dict[int, int]
) -> ScalerSnapshot:
    state = scaler.state()
    return ScalerSnapshot(
        stream=stream,
        version=state.version,
        n_samples=state.n_samples,
        features=list(state.features),
        mean=list(state.mean),
        var=list(state.var),
        offsets=offsets,
        windows_offsets=windows_offsets,
    )


def window_key(stream: str, group: str, key: str) -> bytes:
    return orjson.dumps([stream, group, key])


@dataclass
class Checkpoint:
    scalers: list[Outgoing] = field(default_factory=list)
    windows: list[Outgoing] = field(default_factory=list)
    # The scaler snapshots again, saying the windows are complete.
    complete: list[Outgoing] = field(default_factory=list)
    cuts: dict[str, dict[int, int]] = field(default_factory=dict)
    # (windows, keys touched, keys evicted) taken from each rolling group
    changes: list[tuple[RollingWindows, set[str], set[str]]] = field(default_factory=list)


class Checkpointer:
    """Takes checkpoints of a normalizer's state and sends them."""

    def __init__(self, normalizer: Normalizer, scalers_topic: str, windows_topic: str, interval: float) -> None:
        self.normalizer = normalizer
        self.scalers_topic = scalers_topic
        self.windows_topic = windows_topic
        self.interval = interval
        self.saved: dict[str, dict[int, int]] = {}
        self._taken_at = float("-inf")
        self._pending: Checkpoint | None = None
        self._ready = asyncio.Event()

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        """The batch loop's commit hook: the state agrees with the committed
        offsets now, so this is when a checkpoint is taken (one at a time)."""
        self.normalizer.on_commit(offsets)
        now = time.monotonic()
        if self._pending is not None or now - self._taken_at < self.interval:
            return
        checkpoint = self.take()
        if checkpoint is not None and checkpoint.cuts:
            self._taken_at = now
            self._pending = checkpoint
            self._ready.set()

    def take(self) -> Checkpoint | None:
        """The state of the streams whose committed offsets moved since the
        last checkpoint; None while a batch is in flight."""
        normalizer = self.normalizer
        if not normalizer.settled():
            return None
        checkpoint = Checkpoint()
        for name, stream in normalizer.streams.items():
            cut = dict(normalizer.committed.get(name, {}))
            if not cut or cut == self.saved.get(name):
                continue
            for group in stream.columns.groups.values():
                windows = group.windows
                if windows is None:
                    continue
                touched, evicted = windows.take_changes()
                checkpoint.changes.append((windows, touched, evicted))
                for key in sorted(touched):
                    state = windows.export(key)
                    if state is None:
                        continue
                    snapshot = WindowSnapshot(
                        stream=name, group=group.name, shape=windows.shape, key=key,
                        partition=windows.tag_of(key), applied=cut, state=state,
                    )
                    checkpoint.windows.append(
                        Outgoing(self.windows_topic, snapshot.to_bytes(), window_key(name, group.name, key))
                    )
                checkpoint.windows.extend(
                    Outgoing(self.windows_topic, None, window_key(name, group.name, key)) for key in sorted(evicted)
                )
                metrics.WINDOW_SNAPSHOTS.labels(name).inc(len(touched) + len(evicted))
            complete_before = self.saved.get(name, {})
            checkpoint.scalers.append(
                event_message(self.scalers_topic, snapshot_event(name, stream.scaler, cut, complete_before), key=name)
            )
            checkpoint.complete.append(
                event_message(self.scalers_topic, snapshot_event(name, stream.scaler, cut, cut), key=name)
            )
            checkpoint.cuts[name] = cut
        return checkpoint

    async def save(self, producer: AIOKafkaProducer) -> int:
        """Take a checkpoint now (the service is stopping) and send it, after
        the one taken before if it is still unsent (its keys are in no other)."""
        saved = 0
        if self._pending is not None:
            saved = await self.send(producer, self._pending)
            self._pending = None
        checkpoint = self.take()
        return saved + (0 if checkpoint is None else await self.send(producer, checkpoint))

    async def send(self, producer: AIOKafkaProducer, checkpoint: Checkpoint) -> int:
        """Send a checkpoint taken earlier; returns the streams saved."""
        try:
            await send_all(producer, checkpoint.scalers)
            await send_all(producer, checkpoint.windows)
            await send_all(producer, checkpoint.complete)
        except BaseException:
            # Not saved: the next checkpoint writes these keys again.
            for windows, touched, evicted in checkpoint.changes:
                windows.give_back(touched, evicted)
            raise
        for name, cut in checkpoint.cuts.items():
            self.saved[name] = cut
            metrics.SCALER_SNAPSHOTS.labels(name).inc()
        return len(checkpoint.cuts)

    async def run(self, producer: AIOKafkaProducer, stop: asyncio.Event) -> None:
        """Send each checkpoint taken, until ``stop``. An idle stream commits
        nothing more, so every ``interval`` this also takes one itself if
        the state is settled (the last batch's state is then saved too)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake(stop), timeout=self.interval)
            if stop.is_set():
                return  # the owner takes the final checkpoint
            self._ready.clear()
            if self._pending is None:
                self._pending = self.take()
            if self._pending is None or not self._pending.cuts:
                self._pending = None
                continue
            # Still pending while it is sent: no newer checkpoint is taken
            # meanwhile, so a failed one's keys go into the next.
            try:
                await self.send(producer, self._pending)
            except Exception:  # noqa: BLE001 - its changes are taken again by the next one; never kill the service for it
                log.warning("checkpoint_failed", exc_info=True)
            self._taken_at = time.monotonic()
            self._pending = None

    async def _wake(self, stop: asyncio.Event) -> None:
        ready = asyncio.ensure_future(self._ready.wait())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({ready, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            stopping.cancel()


async def read_scaler_snapshots(bootstrap: str, topic: str, client_id: str, timeout: float = 15.0) -> dict[str, ScalerSnapshot]:
    """The newest scaler snapshot per stream."""
    latest: dict[str, ScalerSnapshot] = {}
    for record in (await read_latest(bootstrap, topic, client_id, timeout=timeout)).values():
        try:
            snapshot = ScalerSnapshot.model_validate_json(record.value or b"")
        except ValueError:
            log.warning("scaler_snapshot_unreadable", offset=record.offset)
            continue
        latest[snapshot.stream] = snapshot
    return latest


async def read_window_snapshots(bootstrap: str, topic: str, client_id: str, timeout: float = 60.0) -> list[WindowSnapshot]:
    """The newest window state of every key held, oldest written first."""
    found: list[WindowSnapshot] = []
    records = sorted((await read_latest(bootstrap, topic, client_id, timeout=timeout)).values(), key=lambda r: r.offset)
    for record in records:
        try:
            found.append(WindowSnapshot.model_validate_json(record.value or b""))
        except ValueError:
            log.warning("window_snapshot_unreadable", offset=record.offset)
    return found


def snapshot_states(snapshots: dict[str, ScalerSnapshot]) -> dict[str, ScalerState]:
    """Snapshots as the scaler states a normalizer resumes from (a stream
    whose features changed since starts afresh, see Normalizer.stream)."""
    return {
        name: ScalerState(
            version=snapshot.version,
            n_samples=snapshot.n_samples,
            features=tuple(snapshot.features),
            mean=tuple(snapshot.mean),
            var=tuple(snapshot.var),
        )
        for name, snapshot in snapshots.items()
    }
