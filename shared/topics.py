"""Topic names, declared once.

A topic is a :class:`TopicSpec` (its base name, the event model it carries,
whether it is per stream and compacted). :class:`Topics` renders the real
names with the deployment's prefix, so tests and parallel deployments can
share one broker. No other module spells a topic name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.events import (
    Alert,
    Event,
    FeaturesEvent,
    LabelEvent,
    ModelPublished,
    Prediction,
    RawEvent,
    ScalerSnapshot,
    StreamDeclared,
    TrainCommand,
    WindowSnapshot,
)


@dataclass(frozen=True)
class TopicSpec:
    base: str
    value_type: type[Event] | None
    per_stream: bool = False
    compacted: bool = False
    partitions: int = 3


RAW = TopicSpec("raw", RawEvent, per_stream=True)
FEATURES = TopicSpec("features", FeaturesEvent, per_stream=True)
PREDICTIONS = TopicSpec("predictions", Prediction, per_stream=True)
# Actual values that arrive after their event (keyed by that event's id).
LABELS = TopicSpec("labels", LabelEvent, per_stream=True)
SCALERS = TopicSpec("scalers", ScalerSnapshot, compacted=True, partitions=1)
# Per key rolling-window state, the normalizer's changelog (key: stream, group, key).
WINDOWS = TopicSpec("windows", WindowSnapshot, compacted=True, partitions=1)
MODELS = TopicSpec("models", ModelPublished, compacted=True, partitions=1)
COMMANDS = TopicSpec("commands", TrainCommand, partitions=1)
ALERTS = TopicSpec("alerts", Alert)
# Dead letters are the original bytes, whatever they were; the origin and
# the reason travel in headers (see shared.kafka.deadletter).
DEADLETTER = TopicSpec("deadletter", None)
# Stream declarations, newest version per stream (see shared.streams.catalog).
STREAMS = TopicSpec("streams", StreamDeclared, compacted=True, partitions=1)

PER_STREAM: tuple[TopicSpec, ...] = (RAW, FEATURES, PREDICTIONS, LABELS)
SHARED: tuple[TopicSpec, ...] = (STREAMS, SCALERS, WINDOWS, MODELS, COMMANDS, ALERTS, DEADLETTER)


@dataclass(frozen=True)
class Topics:
    prefix: str = ""

    def name(self, spec: TopicSpec, stream: str | None = None) -> str:
        if spec.per_stream:
            if stream is None:
                raise ValueError(f"topic {spec.base!r} is per stream: name the stream")
            return f"{self.prefix}{spec.base}.{stream}"
        return f"{self.prefix}{spec.base}"

    def raw(self, stream: str) -> str:
        return self.name(RAW, stream)

    def features(self, stream: str) -> str:
        return self.name(FEATURES, stream)

    def predictions(self, stream: str) -> str:
        return self.name(PREDICTIONS, stream)

    def labels(self, stream: str) -> str:
        return self.name(LABELS, stream)

    def kind_of(self, topic: str) -> str:
        """The base name of a per-stream topic (``raw.energy`` -> ``raw``)."""
        return topic[len(self.prefix):].split(".", 1)[0]

    @property
    def scalers(self) -> str:
        return self.name(SCALERS)

    @property
    def windows(self) -> str:
        return self.name(WINDOWS)

    @property
    def models(self) -> str:
        return self.name(MODELS)

    @property
    def commands(self) -> str:
        return self.name(COMMANDS)

    @property
    def alerts(self) -> str:
        return self.name(ALERTS)

    @property
    def deadletter(self) -> str:
        return self.name(DEADLETTER)

    @property
    def streams(self) -> str:
        return self.name(STREAMS)

    def stream_of(self, topic: str) -> str:
        """The stream a per-stream topic belongs to (``raw.energy`` -> ``energy``)."""
        return topic.rsplit(".", 1)[-1]

    def of_stream(self, stream: str) -> list[tuple[str, TopicSpec]]:
        """The topics one stream needs (created when it is registered)."""
        return [(self.name(spec, stream), spec) for spec in PER_STREAM]

    def all(self, streams: Iterable[str] = ()) -> list[tuple[str, TopicSpec]]:
        """The shared topics and those of ``streams``, for the topic-init job and tests."""
        names = [(self.name(spec), spec) for spec in SHARED]
        for stream in streams:
            names.extend(self.of_stream(stream))
        return names
