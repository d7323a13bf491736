"""A record delivered again (a rewound batch, an isolated one) gets the
features event it got the first time, byte for byte, and the rolling windows
and the scaler count it once."""

from __future__ import annotations

import orjson
from aiokafka.structs import ConsumerRecord

from services.generator.messages import Emitter
from services.generator.settings import GeneratorSettings
from services.generator.simulators import simulate
from services.normalizer.handler import Normalizer
from shared.streams.catalog import Catalog
from tests.normalizer.records import TOPICS
from tests.streams import PRESSURE


def pressure_records(count: int) -> list[ConsumerRecord]:
    source = simulate(PRESSURE, GeneratorSettings(generator_seed=3, generator_sensors=5))
    emitter = Emitter(source, seed=3, invalid_rate=0.05)
    topic = TOPICS.raw(PRESSURE.name)
    return [ConsumerRecord(topic, 0, offset, 0, 0, key, value, None, len(key), len(value), [])
            for offset, (key, value) in enumerate(emitter.batch(count))]


def answers(result) -> tuple[list[dict], list[tuple[int, str]]]:  # noqa: ANN001
    """The features events (but the time they were made) and the dead letters."""
    events = [{k: v for k, v in orjson.loads(o.value).items() if k != "produced_at"} for o in result.outputs]
    return events, sorted((r.record.offset, r.reason) for r in result.rejected)


def test_a_rewound_batch_is_answered_as_the_first_time_and_counted_once() -> None:
    records = pressure_records(900)
    first, second, third = records[:300], records[300:600], records[600:]
    once = Normalizer(TOPICS, Catalog([PRESSURE]))
    expected = [answers(once.handle(batch)) for batch in (first, second[:100], second[100:], third)]
    # The same records handled with these batch boundaries, redelivered along the way.
    expected_second = (expected[1][0] + expected[2][0], sorted(expected[1][1] + expected[2][1]))
    assert expected[0][1], "the generator made no invalid record to dead-letter"

    again = Normalizer(TOPICS, Catalog([PRESSURE]))
    delivered = again.handle(first)
    assert answers(delivered) == expected[0]
    state = again.streams[PRESSURE.name].scaler.state()
    # Rewound: the whole batch again (the very same bytes), then a batch that runs past it.
    redelivered = again.handle(first)
    assert [o.value for o in redelivered.outputs] == [o.value for o in delivered.outputs]
    assert answers(redelivered) == expected[0]
    assert again.streams[PRESSURE.name].scaler.state() == state
    again.handle(second[:100])  # handled, then rewound with what came after it
    assert answers(again.handle(second)) == expected_second
    # Isolated: record by record, each answered as in its batch.
    one_by_one = [answers(again.handle([record])) for record in second]
    assert [value for values, _ in one_by_one for value in values] == expected_second[0]
    assert sorted(reason for _, reasons in one_by_one for reason in reasons) == expected_second[1]
    # What follows is computed from state that saw every record once.
    assert answers(again.handle(third)) == expected[3]


def test_a_new_record_at_a_remembered_offset_is_handled_as_new() -> None:
    records = pressure_records(20)
    normalizer = Normalizer(TOPICS, Catalog([PRESSURE]))
    normalizer.handle(records[:10])
    moved = [ConsumerRecord(r.topic, 0, offset, 0, 0, r.key, r.value, None, r.serialized_key_size,
                            r.serialized_value_size, []) for offset, r in enumerate(records[10:])]
    version = normalizer.streams[PRESSURE.name].scaler.version
    result = normalizer.handle(moved)
    assert len(result.outputs) + len(result.rejected) == 10
    assert normalizer.streams[PRESSURE.name].scaler.version == version + 1


def test_the_memory_is_bounded() -> None:
    records = pressure_records(50)
    normalizer = Normalizer(TOPICS, Catalog([PRESSURE]), remembered=20)
    normalizer.handle(records)
    assert len(normalizer.recent) == 20
    version = normalizer.streams[PRESSURE.name].scaler.version
    normalizer.handle(records[:5])  # forgotten: handled (and counted) again
    assert normalizer.streams[PRESSURE.name].scaler.version == version + 1
