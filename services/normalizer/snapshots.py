"""Scaler snapshots: published to the compacted scalers topic (key = stream)
when changed, at most every SCALER_PUBLISH_INTERVAL seconds, and read back at
start-up so a restarted normalizer resumes its scalers and their versions."""

from __future__ import annotations

import asyncio

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from services.normalizer import metrics
from services.normalizer.handler import Normalizer
from shared.events import ScalerSnapshot
from shared.features.scaler import OnlineScaler, ScalerState
from shared.kafka.clients import event_message, send_all
from shared.kafka.messages import Outgoing
from shared.kafka.partitions import assign_from_start
from shared.topics import SCALERS

log = structlog.get_logger(__name__)


def snapshot_event(stream: str, scaler: OnlineScaler) -> ScalerSnapshot:
    state = scaler.state()
    return ScalerSnapshot(
        stream=stream,
        version=state.version,
        n_samples=state.n_samples,
        features=list(state.features),
        mean=list(state.mean),
        var=list(state.var),
    )


class SnapshotPublisher:
    """Tracks which scaler versions were published and sends the new ones."""

    def __init__(self, normalizer: Normalizer, topic: str) -> None:
        self.normalizer = normalizer
        self.topic = topic
        self.published: dict[str, int] = {name: s.scaler.version for name, s in normalizer.streams.items()}

    def pending(self) -> list[tuple[str, int, Outgoing]]:
        due = []
        for name, stream in self.normalizer.streams.items():
            version = stream.scaler.version
            if version != self.published.get(name):
                due.append((name, version, event_message(self.topic, snapshot_event(name, stream.scaler), key=name)))
        return due

    async def publish(self, producer: AIOKafkaProducer) -> int:
        due = self.pending()
        if not due:
            return 0
        await send_all(producer, [message for _, _, message in due])
        for name, version, _ in due:
            self.published[name] = version
            metrics.SCALER_SNAPSHOTS.labels(name).inc()
        return len(due)

    async def run(self, producer: AIOKafkaProducer, interval: float, stop: asyncio.Event) -> None:
        while True:
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
                return  # stopping: the owner sends the final snapshot
            except TimeoutError:
                pass
            try:
                await self.publish(producer)
            except Exception:  # noqa: BLE001 - a missed snapshot is retried next tick; never kill the service for it
                log.warning("scaler_snapshot_failed", exc_info=True)


async def read_latest_snapshots(
    bootstrap: str, topic: str, client_id: str, timeout: float = 15.0
) -> dict[str, ScalerSnapshot]:
    """The newest snapshot per stream on the scalers topic (which must exist)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, client_id=client_id, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    latest: dict[str, ScalerSnapshot] = {}
    try:
        # The topic is declared single-partition (it is compacted and tiny).
        tps = [TopicPartition(topic, p) for p in range(SCALERS.partitions)]
        await assign_from_start(consumer, tps)
        ends = await consumer.end_offsets(tps)
        async with asyncio.timeout(timeout):
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        try:
                            snapshot = ScalerSnapshot.model_validate_json(record.value or b"")
                        except ValidationError:
                            log.warning("scaler_snapshot_unreadable", offset=record.offset)
                            continue
                        latest[snapshot.stream] = snapshot
    finally:
        await consumer.stop()
    return latest


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
