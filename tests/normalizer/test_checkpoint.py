"""Checkpoints of the normalizer's state, without a broker: a key's window
exported and installed goes on to the very floats it would have given; a
normalizer restored from a checkpoint and replayed up to the committed
offsets answers the next records exactly as one that never stopped, also
when the process died between writing the windows and the scaler (windows
newer than the cut)."""

from __future__ import annotations

import math
import random
import zlib

import numpy as np
import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from services.normalizer.checkpoint import Checkpoint, Checkpointer
from services.normalizer.handler import Normalizer, Restored
from shared.events import ScalerSnapshot, WindowSnapshot
from shared.features.rolling import RollingWindows
from shared.features.scaler import ScalerState
from shared.streams.catalog import Catalog
from shared.streams.declaration import Statistic
from tests.normalizer.records import TOPICS
from tests.normalizer.test_restart_state import ROLLING, raw_messages, same
from tests.streams import PRESSURE

PARTITIONS = 3
REQUESTS = [(1, Statistic.MEAN), (24, Statistic.STD), (24, Statistic.MIN), (48, Statistic.MAX), (48, Statistic.COUNT)]


def readings(n: int, seed: int) -> tuple[list[str], list[int], list[float]]:
    rng = random.Random(seed)
    keys = [f"k{rng.randrange(5)}" for _ in range(n)]
    buckets = sorted(rng.randrange(0, 400) for _ in range(n))
    return keys, buckets, [rng.gauss(50, 9) for _ in range(n)]


def test_an_installed_window_goes_on_exactly_as_the_original() -> None:
    keys, buckets, values = readings(3000, seed=5)
    whole = RollingWindows(100, 48, REQUESTS)
    expected = whole.update(keys, buckets, values)

    first = RollingWindows(100, 48, REQUESTS)
    first.update(keys[:1700], buckets[:1700], values[:1700])
    second = RollingWindows(100, 48, REQUESTS)
    for key in sorted(set(keys[:1700])):
        state = orjson.loads(orjson.dumps(first.export(key)))  # as it travels
        second.install(key, state)
    got = second.update(keys[1700:], buckets[1700:], values[1700:])
    assert np.array_equal(got, expected[1700:], equal_nan=True)


def test_a_window_of_another_shape_is_refused() -> None:
    small = RollingWindows(10, 24, [(24, Statistic.MEAN)])
    small.update(["a"], [1], [1.0])
    other = RollingWindows(10, 48, [(48, Statistic.MEAN)])
    assert small.shape != other.shape
    with pytest.raises(ValueError, match="windows"):
        other.install("a", small.export("a"))  # type: ignore[arg-type]


def test_changes_name_the_keys_updated_and_evicted() -> None:
    windows = RollingWindows(2, 4, [(4, Statistic.MEAN)])
    windows.update(["a", "b"], [1, 1], [1.0, 2.0])
    assert windows.take_changes() == ({"a", "b"}, set())
    windows.update(["c"], [2], [3.0])  # evicts a
    touched, evicted = windows.take_changes()
    assert (touched, evicted) == ({"c"}, {"a"})
    windows.give_back(touched, evicted)  # a checkpoint that failed
    assert windows.take_changes() == ({"c"}, {"a"})


def records(count: int) -> list[ConsumerRecord]:
    topic = TOPICS.raw(PRESSURE.name)
    offsets = [0] * PARTITIONS
    out = []
    for key, value in raw_messages(count):
        partition = zlib.crc32(key) % PARTITIONS
        out.append(ConsumerRecord(topic, partition, offsets[partition], 0, 0, key, value, None, 0, 0, []))
        offsets[partition] += 1
    return out


def commit(checkpointer: Checkpointer, handled: list[ConsumerRecord]) -> None:
    newest: dict[TopicPartition, int] = {}
    for record in handled:
        newest[TopicPartition(record.topic, record.partition)] = record.offset + 1
    checkpointer.committed(newest)


def rolling(outputs: list) -> dict[str, dict]:  # noqa: ANN001
    events = [orjson.loads(output.value) for output in outputs]
    return {e["event_id"]: {name: e["features"].get(name, math.nan) for name in ROLLING} for e in events}


def compacted(*writes: list) -> list:  # noqa: ANN001
    """The newest message per key of the messages written, in this order."""
    latest = {}
    for messages in writes:
        for message in messages:
            latest.pop(message.key, None)
            latest[message.key] = message
    return list(latest.values())


def restore(windows: list, scaler_message) -> tuple[Normalizer, Restored]:  # noqa: ANN001
    """A fresh normalizer from the windows and scaler snapshot on the topics."""
    scaler = ScalerSnapshot.model_validate_json(scaler_message.value)
    state = ScalerState(scaler.version, scaler.n_samples, tuple(scaler.features), tuple(scaler.mean), tuple(scaler.var))
    normalizer = Normalizer(TOPICS, Catalog([PRESSURE]), restored={PRESSURE.name: state})
    restored = Restored(windows_cut=dict(scaler.windows_offsets), scaler_cut=dict(scaler.offsets))
    groups = {group.name: group for group in normalizer.streams[PRESSURE.name].columns.groups.values()}
    for message in windows:
        snapshot = WindowSnapshot.model_validate_json(message.value)
        groups[snapshot.group].windows.install(snapshot.key, snapshot.state, tag=snapshot.partition)
        restored.keys[(snapshot.group, snapshot.key)] = snapshot.applied
    return normalizer, restored


@pytest.mark.parametrize("died", ["after the checkpoint", "writing its windows", "before its windows"])
def test_restored_and_replayed_state_answers_as_if_never_stopped(died: str) -> None:
    stream = records(2400)
    batches = [stream[i:i + 50] for i in range(0, len(stream), 50)]
    reference = Normalizer(TOPICS, Catalog([PRESSURE]))
    expected_by_batch = [rolling(reference.handle(batch).outputs) for batch in batches]
    expected = {k: v for answers in expected_by_batch for k, v in answers.items()}

    # The normalizer that dies: checkpoints after batches 10 and 20, handles
    # and commits up to batch 30, then handles batch 30 and dies before
    # committing it.
    dying = Normalizer(TOPICS, Catalog([PRESSURE]))
    checkpointer = Checkpointer(dying, "scalers", "windows", interval=0.0)
    taken: list[Checkpoint] = []
    for number, batch in enumerate(batches[:30], start=1):
        dying.handle(batch)
        commit(checkpointer, batch)
        if number in (10, 20):
            taken.append(checkpointer._pending)  # noqa: SLF001 - what the sender task would send
            checkpointer.saved.update(checkpointer._pending.cuts)  # noqa: SLF001 - as a sent one is
        checkpointer._pending = None  # noqa: SLF001
    handled_uncommitted = dying.handle(batches[30])
    assert handled_uncommitted.outputs
    first, second = taken
    assert len(second.windows) > 2

    if died == "after the checkpoint":
        windows, scaler = compacted(first.windows, second.windows), second.complete[0]
    elif died == "writing its windows":
        windows = compacted(first.windows, second.windows[: len(second.windows) // 2])
        scaler = second.scalers[0]
    else:
        windows, scaler = compacted(first.windows), second.scalers[0]
    restored_normalizer, restored = restore(windows, scaler)
    start = restored.windows_cut
    replay = [r for batch in batches[:30] for r in batch if r.offset > start.get(r.partition, -1)]
    for begin in range(0, len(replay), 37):  # other batch boundaries than the first time
        restored_normalizer.replay(replay[begin:begin + 37], {PRESSURE.name: restored})

    # Batch 30 delivered again, then the rest: the statistics of the first time.
    got: dict[str, dict] = {}
    for batch in batches[30:]:
        got.update(rolling(restored_normalizer.handle(batch).outputs))
    assert got.keys() == {k for answers in expected_by_batch[30:] for k in answers}
    differing = [event_id for event_id, stats in got.items()
                 if not all(same(stats[n], expected[event_id][n]) for n in ROLLING)]
    assert not differing, f"{len(differing)} of {len(got)} differ"
    assert (restored_normalizer.streams[PRESSURE.name].scaler.n_samples
            == reference.streams[PRESSURE.name].scaler.n_samples)
    # Batch 30, handled before the crash and delivered again after it: the same statistics.
    first_time = rolling(handled_uncommitted.outputs)
    assert all(all(same(stats[n], got[k][n]) for n in ROLLING) for k, stats in first_time.items())
