"""Streams declared as data.

A stream's declaration (shared.streams.declaration) says which fields arrive
on its raw topic, which columns are computed from them and what is learned.
Every service reads declarations, never a list of columns written in code:
the built-in streams are declaration files in ``builtin/``, and users register
more while Fluxo runs (they travel on the compacted ``streams`` topic; see
shared.streams.catalog).
"""

from shared.streams.declaration import (
    ALGORITHMS_BY_KIND,
    METRICS_BY_KIND,
    Algorithm,
    DeclarationInvalid,
    DerivedSpec,
    EntityHistorySpec,
    EntitySpec,
    FieldSpec,
    FieldType,
    Problem,
    RollingSpec,
    SimulationSpec,
    Statistic,
    StreamSpec,
    TaskKind,
    TaskSpec,
    TimePart,
    TimePartsSpec,
    parse_declaration,
)
from shared.streams.files import builtin_stream, builtin_streams, load_declaration, read_declaration_text

__all__ = [
    "ALGORITHMS_BY_KIND",
    "METRICS_BY_KIND",
    "Algorithm",
    "DeclarationInvalid",
    "DerivedSpec",
    "EntityHistorySpec",
    "EntitySpec",
    "FieldSpec",
    "FieldType",
    "Problem",
    "RollingSpec",
    "SimulationSpec",
    "Statistic",
    "StreamSpec",
    "TaskKind",
    "TaskSpec",
    "TimePart",
    "TimePartsSpec",
    "builtin_stream",
    "builtin_streams",
    "load_declaration",
    "parse_declaration",
    "read_declaration_text",
]
