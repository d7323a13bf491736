"""The built-in stream declarations under short names, for tests."""

from __future__ import annotations

from shared.streams import StreamSpec, builtin_streams

STREAMS: dict[str, StreamSpec] = {spec.name: spec for spec in builtin_streams()}
ENERGY = STREAMS["energy"]
PRESSURE = STREAMS["pressure"]
PEOPLE = STREAMS["people"]
CONSUMPTION = STREAMS["consumption"]


def get_stream(name: str) -> StreamSpec:
    return STREAMS[name]
