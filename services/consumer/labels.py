"""Labels that arrive after their event (``labels.<stream>``): joined to the
stored predictions, or kept until the event is scored.

A label names an earlier event and gives the actual value of one or more of
the stream's targets. It updates every prediction row of that event whose
task has that target: the actual value, and the error against the row's own
prediction (regression: prediction - actual, and in percent; classification:
0 right, 1 wrong). An event not scored yet keeps its label in
``pending_labels`` until its predictions are written (then it joins) or the
bound passes (then it goes to the dead-letter topic with the reason).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from shared.events import LabelEvent
from shared.kafka.deadletter import dead_letter_of
from shared.kafka.messages import Outgoing, Rejected
from shared.ml.inputs import label_text
from shared.streams import FieldType, StreamSpec, TaskKind
from shared.validation import validate_batch


@dataclass(frozen=True)
class Label:
    event_id: str
    field: str
    value: Any  # a number for numeric targets, the class label as text otherwise
    origin: tuple[str, int, int]  # topic, partition, offset of the label message
    raw: bytes


@dataclass(frozen=True)
class Joined:
    """A prediction row a label reached."""

    task: str
    model_version: int
    role: str
    error: float | None


def parse_labels(spec: StreamSpec, records: Sequence[ConsumerRecord]) -> tuple[list[Label], list[Rejected]]:
    labels: list[Label] = []
    rejected: list[Rejected] = []
    targets = set(spec.targets)
    for record in records:
        try:
            event = LabelEvent.model_validate_json(record.value or b"")
        except ValidationError as error:
            first = error.errors()[0]
            rejected.append(Rejected(record, f"not a label: {'.'.join(map(str, first['loc'])) or 'message'}: {first['msg']}"))
            continue
        if event.stream != spec.name:
            rejected.append(Rejected(record, f"stream: label is for {event.stream!r} but arrived on {spec.name!r}'s topic"))
            continue
        unknown = sorted(set(event.values) - targets)
        if unknown:
            rejected.append(Rejected(record, f"{unknown[0]}: not a target of stream {spec.name!r} "
                                             f"(targets: {', '.join(sorted(targets)) or 'none'})"))
            continue
        fields = [spec.field(name).model_copy(update={"required": True}) for name in event.values]
        check = validate_batch(fields, [dict(event.values)])
        if check.reasons:
            rejected.append(Rejected(record, check.reasons[0]))
            continue
        clean = check.row(0)
        origin = (record.topic, record.partition, record.offset)
        for name in event.values:
            labels.append(Label(event.event_id, name, _stored(spec, name, clean[name]), origin, record.value or b""))
    return labels, rejected


def _stored(spec: StreamSpec, name: str, value: Any) -> Any:
    kind = spec.field(name).type
    if kind in (FieldType.FLOAT, FieldType.INT):
        return float(value)
    if kind is FieldType.BOOL:
        return 1.0 if value else 0.0
    return str(value)


_REGRESSION = """
UPDATE predictions p SET actual = l.value, error = p.prediction - l.value,
       percent_error = CASE WHEN l.value <> 0 THEN 100 * (p.prediction - l.value) / abs(l.value) END
FROM unnest($1::text[], $2::float8[]) AS l(event_id, value)
WHERE p.event_id = l.event_id AND p.stream = $3 AND p.task = $4
RETURNING p.event_id, p.task, p.model_version, p.role, p.error"""

_CLASSIFICATION = """
UPDATE predictions p SET actual_label = l.value,
       error = CASE WHEN p.label IS NULL THEN NULL WHEN p.label = l.value THEN 0 ELSE 1 END
FROM unnest($1::text[], $2::text[]) AS l(event_id, value)
WHERE p.event_id = l.event_id AND p.stream = $3 AND p.task = $4
RETURNING p.event_id, p.task, p.model_version, p.role, p.error"""

_PEND = """
INSERT INTO pending_labels (event_id, stream, field, value, origin_topic, origin_partition, origin_offset, raw)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (event_id, field) DO UPDATE SET value = EXCLUDED.value, received_at = now(),
    origin_topic = EXCLUDED.origin_topic, origin_partition = EXCLUDED.origin_partition,
    origin_offset = EXCLUDED.origin_offset, raw = EXCLUDED.raw"""


async def join_labels(connection: asyncpg.Connection, spec: StreamSpec, labels: Sequence[Label],
                      *, keep_unjoined: bool = True) -> tuple[list[Joined], set[tuple[str, str]]]:
    """Update the prediction rows the labels reach; the labels that reached
    none are kept pending (when ``keep_unjoined``). Returns the rows reached
    and the (event id, field) pairs that joined something."""
    joined: list[Joined] = []
    reached: set[tuple[str, str]] = set()
    by_field: dict[str, list[Label]] = {}
    for label in labels:
        by_field.setdefault(label.field, []).append(label)
    for field, group in by_field.items():
        ids = [label.event_id for label in group]
        for task in spec.tasks:
            if task.target != field or task.kind is TaskKind.CLUSTERING:
                continue
            if task.kind is TaskKind.REGRESSION:
                rows = await connection.fetch(_REGRESSION, ids, [float(label.value) for label in group], spec.name, task.name)
            else:
                kind = spec.field(field).type
                texts = [label_text(label.value, kind) for label in group]
                rows = await connection.fetch(_CLASSIFICATION, ids, texts, spec.name, task.name)
            for row in rows:
                reached.add((row["event_id"], field))
                joined.append(Joined(row["task"], row["model_version"], row["role"], row["error"]))
    if keep_unjoined:
        waiting = [label for label in labels if (label.event_id, label.field) not in reached]
        if waiting:
            await connection.executemany(_PEND, [
                (label.event_id, spec.name, label.field, label.value, *label.origin, label.raw) for label in waiting
            ])
    return joined, reached


async def join_pending(connection: asyncpg.Connection, spec: StreamSpec, event_ids: Sequence[str]) -> list[Joined]:
    """Labels that were waiting for these events, joined now that their
    predictions are written (inside the same transaction)."""
    rows = await connection.fetch(
        """SELECT event_id, field, value, origin_topic, origin_partition, origin_offset, raw
           FROM pending_labels WHERE event_id = ANY($1::text[]) AND stream = $2""",
        list(event_ids), spec.name,
    )
    if not rows:
        return []
    labels = [Label(r["event_id"], r["field"], r["value"], (r["origin_topic"], r["origin_partition"],
                    r["origin_offset"]), r["raw"]) for r in rows]
    joined, reached = await join_labels(connection, spec, labels, keep_unjoined=False)
    if reached:
        await connection.execute(
            """DELETE FROM pending_labels p USING unnest($1::text[], $2::text[]) AS r(event_id, field)
               WHERE p.event_id = r.event_id AND p.field = r.field""",
            [event_id for event_id, _ in reached], [field for _, field in reached],
        )
    return joined


async def expired(pool: asyncpg.Pool, ttl_seconds: float, deadletter_topic: str, service: str,
                  limit: int = 1000) -> tuple[list[Outgoing], list[tuple[str, str]]]:
    """Labels that waited longer than the bound: their dead letters, and the
    (event id, field) keys to delete once those are sent."""
    rows = await pool.fetch(
        """SELECT event_id, stream, field, origin_topic, origin_partition, origin_offset, raw
           FROM pending_labels WHERE received_at < now() - make_interval(secs => $1)
           ORDER BY received_at LIMIT $2""",
        ttl_seconds, limit,
    )
    letters = [
        dead_letter_of(r["origin_topic"], r["origin_partition"], r["origin_offset"], r["event_id"].encode(),
                       bytes(r["raw"]), f"label for an unknown event: no event {r['event_id']!r} was scored in "
                       f"stream {r['stream']!r} within {ttl_seconds:g} s", deadletter_topic, service)
        for r in rows
    ]
    return letters, [(r["event_id"], r["field"]) for r in rows]


async def forget(pool: asyncpg.Pool, keys: Sequence[tuple[str, str]]) -> None:
    await pool.execute(
        """DELETE FROM pending_labels p USING unnest($1::text[], $2::text[]) AS r(event_id, field)
           WHERE p.event_id = r.event_id AND p.field = r.field""",
        [event_id for event_id, _ in keys], [field for _, field in keys],
    )
