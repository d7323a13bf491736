"""Event rates and consumer lag from Kafka offsets: pure arithmetic, no I/O.

A topic's end offsets only grow, one per message, so the messages a topic
received between two samples are the difference of the sums of its end
offsets; a group's lag on a topic is how far its committed offsets are
behind those ends.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka import TopicPartition


@dataclass(frozen=True)
class OffsetSample:
    at: float  # time.monotonic() of the sample
    ends: Mapping[str, int]  # topic -> sum of its partitions' end offsets


class RateHistory:
    """Recent samples of end offsets; a topic's rate is measured over the last ``horizon`` seconds."""

    def __init__(self, horizon: float = 60.0) -> None:
        self.horizon = horizon
        self._samples: deque[OffsetSample] = deque()

    def add(self, sample: OffsetSample) -> None:
        self._samples.append(sample)
        # Keep one sample older than the horizon: the rate then spans the whole horizon.
        while len(self._samples) > 2 and self._samples[1].at <= sample.at - self.horizon:
            self._samples.popleft()

    def rate(self, topic: str) -> float | None:
        """Messages per second, or None until two samples have seen the topic."""
        seen = [s for s in self._samples if topic in s.ends]
        if len(seen) < 2:
            return None
        first, last = seen[0], seen[-1]
        elapsed = last.at - first.at
        if elapsed <= 0:
            return None
        # A topic deleted and created again restarts at zero: no negative rate.
        return max(last.ends[topic] - first.ends[topic], 0) / elapsed


def sum_by_topic(offsets: Mapping[TopicPartition, int]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for tp, offset in offsets.items():
        totals[tp.topic] = totals.get(tp.topic, 0) + offset
    return totals


def lag_by_topic(ends: Mapping[TopicPartition, int], committed: Mapping[TopicPartition, int]) -> dict[str, int]:
    """Per topic the group has committed on: messages not yet consumed.

    A partition the group has no commit on counts whole (the services read a
    new partition from its start); a topic it has no commit on at all is left
    out, since the group may not read it.
    """
    read = {tp.topic for tp, offset in committed.items() if offset >= 0}
    lag: dict[str, int] = {}
    for tp, end in ends.items():
        if tp.topic not in read:
            continue
        done = committed.get(tp, -1)
        lag[tp.topic] = lag.get(tp.topic, 0) + max(end - max(done, 0), 0)
    return lag
