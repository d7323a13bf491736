"""What the normalizer made of each record it handled lately, so a record
delivered again gives the same answer.

BatchLoop delivers a batch again after a transient error (rewound to the
committed offsets) and record by record when the batch is isolated. Without
this memory the record would go through the scaler's ``partial_fit`` and the
rolling windows a second time: its features event would differ from the first
under the same event id, and the statistics would count it twice. The
record at a (topic, partition, offset) is the same record on every delivery;
its value is compared too, so a hand-made record reusing an offset is new.

Only what the loop can deliver again is needed: the batch in hand and the
ones not committed yet, a few ``max_records``. A restarted normalizer starts
without this memory, and a partition lost in a rebalance is forgotten: such
records meet the state restored as of the committed offset
(services/normalizer/restore.py), which gives them the same statistics.
"""

from __future__ import annotations

from collections import OrderedDict

from aiokafka.structs import ConsumerRecord

from shared.kafka.messages import Outgoing

# A features event, or the reason the record was dead-lettered.
Outcome = Outgoing | str


class RecentOutcomes:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._outcomes: OrderedDict[tuple[str, int, int], tuple[bytes | None, Outcome]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._outcomes)

    def get(self, record: ConsumerRecord) -> Outcome | None:
        held = self._outcomes.get((record.topic, record.partition, record.offset))
        if held is None or held[0] != record.value:
            return None
        return held[1]

    def forget(self, topic: str, partition: int) -> None:
        """A partition lost: its records come back (if ever) against restored state."""
        for key in [key for key in self._outcomes if key[0] == topic and key[1] == partition]:
            del self._outcomes[key]

    def remember(self, record: ConsumerRecord, outcome: Outcome) -> None:
        key = (record.topic, record.partition, record.offset)
        self._outcomes[key] = (record.value, outcome)
        self._outcomes.move_to_end(key)
        while len(self._outcomes) > self.capacity:
            self._outcomes.popitem(last=False)
