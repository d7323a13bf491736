"""Generator messages are RawEvents; its deliberately invalid ones are each
turned away by the normalizer with a reason."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from services.generator.invalid import KINDS
from services.generator.messages import Emitter
from services.normalizer.handler import Normalizer
from shared.events import RawEvent
from shared.streams import builtin_streams
from shared.streams.catalog import Catalog
from shared.topics import Topics
from tests.generator.streams import SIMULATED, people, source

TOPICS = Topics("unit.")


def as_records(stream: str, messages: list[tuple[bytes, bytes]]) -> list[ConsumerRecord]:
    topic = TOPICS.raw(stream)
    return [ConsumerRecord(topic, 0, i, 0, 0, k, v, None, len(k), len(v), []) for i, (k, v) in enumerate(messages)]


@pytest.mark.parametrize("stream", SIMULATED)
def test_messages_are_raw_events_keyed_by_the_key_field(stream: str) -> None:
    emitter = Emitter(source(stream, 1), seed=1)
    messages = emitter.batch(200)
    assert emitter.valid == 200 and not emitter.invalid
    events = [RawEvent.model_validate_json(value) for _, value in messages]
    assert len({e.event_id for e in events}) == 200
    for (key, _), event in zip(messages, events):
        assert event.stream == stream and event.source == "generator" and event.dataset_id is None
        assert key.decode() == event.key == str(event.data[emitter.source.spec.key])
        assert event.produced_at.tzinfo is not None


@pytest.mark.parametrize("stream", SIMULATED)
def test_invalid_events_are_dead_lettered_with_reasons_and_valid_ones_pass(stream: str) -> None:
    emitter = Emitter(source(stream, 2), seed=2, invalid_rate=0.3)
    messages = emitter.batch(700)
    invalid = sum(emitter.invalid.values())
    assert set(emitter.invalid) == set(KINDS)  # every kind of corruption is exercised
    assert invalid == pytest.approx(210, rel=0.25)
    result = Normalizer(TOPICS, Catalog(builtin_streams())).handle(as_records(stream, messages))
    assert len(result.rejected) == invalid
    assert len(result.outputs) == emitter.valid
    reasons = Counter(r.reason.split(":")[0] for r in result.rejected)
    assert reasons["invalid JSON"] == emitter.invalid["invalid_json"]
    assert reasons["expected a JSON object, got array"] == emitter.invalid["not_an_object"]
    by_reason = Counter(
        "nan" if "NaN" in r.reason else "infinity" if "infinite" in r.reason
        else "out_of_bounds" if "maximum" in r.reason or "minimum" in r.reason
        else "wrong_type" if "expected a number" in r.reason
        else "missing_field" if r.reason.endswith(": missing") else "other"
        for r in result.rejected
    )
    for kind in ("nan", "infinity", "out_of_bounds", "wrong_type", "missing_field"):
        assert by_reason[kind] == emitter.invalid[kind], kind


def test_invalid_choice_does_not_change_the_valid_records() -> None:
    clean = Emitter(people(3), seed=3).batch(300)
    dirty_emitter = Emitter(people(3), seed=3, invalid_rate=0.2)
    dirty = dirty_emitter.batch(300)
    data = [orjson.loads(v)["data"] for _, v in clean]
    same = 0
    for (_, value), expected in zip(dirty, data):
        try:
            event = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict) and event["data"] == expected:
            same += 1
    assert same == dirty_emitter.valid
