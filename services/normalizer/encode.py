"""Features events as orjson-encoded dicts, one stream's batch at a time.

The dicts are exactly shared.events.FeaturesEvent (a unit test validates
them into it); building them directly instead of through pydantic keeps the
hot path cheap. Column work is done per column with numpy, then zipped into
one dict per event; absent values (an optional field, a rolling statistic
of an empty window) are left out of an event rather than sent as null.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from services.normalizer.envelope import Envelope
from shared.events import SCHEMA_VERSION
from shared.kafka.messages import Outgoing
from shared.streams import FieldType, StreamSpec


def row_dicts(names: Sequence[str], table: np.ndarray) -> list[dict[str, float]]:
    """One dict per row of ``table`` (rows x names), non-finite values left out."""
    if not len(names):
        return [{} for _ in range(len(table))]
    finite = np.isfinite(table)
    if finite.all():
        return [dict(zip(names, row)) for row in table.tolist()]
    return [
        {name: value for name, value, here in zip(names, row, mask) if here}
        for row, mask in zip(table.tolist(), finite.tolist())
    ]


class FeaturesEncoder:
    def __init__(self, spec: StreamSpec, topic: str) -> None:
        self.spec = spec
        self.topic = topic
        self._categories = tuple(f.name for f in spec.fields if f.type is FieldType.CATEGORY)
        self._kinds = {f.name: f.type for f in spec.fields}

    def encode(
        self,
        columns: dict[str, Any],
        rows: np.ndarray,
        numbers: dict[str, np.ndarray],
        scaled: np.ndarray,
        scaler_version: int,
        envelopes: Sequence[Envelope],
    ) -> list[Outgoing]:
        """One message per row: ``rows`` index the validated ``columns`` and
        ``envelopes``; ``numbers`` holds every numeric column of the rows, and
        ``scaled`` the stream's scaled features."""
        row_list = rows.tolist()
        names = list(numbers)
        features = row_dicts(names, np.column_stack([numbers[n] for n in names]) if names else np.empty((len(row_list), 0)))
        scaled_rows = row_dicts(self.spec.scaled_features, scaled)
        categories = self._text_columns(columns, self._categories, row_list)
        targets = self.targets(columns, numbers, row_list)
        contexts = self.contexts(columns, row_list)
        keys = self.keys(columns, row_list, envelopes)
        produced_at = datetime.now(UTC).isoformat()
        stream, topic, dumps = self.spec.name, self.topic, orjson.dumps
        outputs = []
        for j, position in enumerate(row_list):
            envelope = envelopes[position]
            event = {
                "event_id": envelope.event_id,
                "stream": stream,
                "produced_at": produced_at,
                "schema_version": SCHEMA_VERSION,
                "key": keys[j],
                "features": features[j],
                "categories": categories[j],
                "scaled": scaled_rows[j],
                "scaler_version": scaler_version,
                "targets": targets[j],
                "context": contexts[j],
                "source": envelope.source,
                "dataset_id": envelope.dataset_id,
                "raw_produced_at": envelope.produced_at,
            }
            outputs.append(Outgoing(topic=topic, value=dumps(event), key=keys[j].encode()))
        return outputs

    def keys(self, columns: dict[str, Any], row_list: list[int], envelopes: Sequence[Envelope]) -> list[str]:
        """The message key of each row: the key field's value, else the event id."""
        if self.spec.key is None:
            return [envelopes[i].event_id for i in row_list]
        column = columns[self.spec.key]
        if isinstance(column, np.ndarray):  # an int key
            return [str(int(column[i])) for i in row_list]
        return [str(column[i]) for i in row_list]

    def targets(self, columns: dict[str, Any], numbers: dict[str, np.ndarray], row_list: list[int]) -> list[dict[str, Any]]:
        """Per row, the task targets the record carries: numbers (booleans as
        1.0/0.0) or, for text and category targets, the label itself."""
        out: list[dict[str, Any]] = [{} for _ in row_list]
        for name in self.spec.targets:
            if name in numbers:
                values = numbers[name].tolist()
                for j, value in enumerate(values):
                    if value == value:  # not NaN
                        out[j][name] = value
            else:
                column = columns[name]
                for j, i in enumerate(row_list):
                    if column[i] is not None:
                        out[j][name] = column[i]
        return out

    def contexts(self, columns: dict[str, Any], row_list: list[int]) -> list[dict[str, Any]]:
        """Per row, the stream's context fields as validated (absent ones left out)."""
        names = self.spec.context
        if not names:
            return [{} for _ in row_list]
        values = [self._context_column(name, columns[name], row_list) for name in names]
        if not any(None in column for column in values):
            return [dict(zip(names, row)) for row in zip(*values)]
        return [{name: value for name, value in zip(names, row) if value is not None} for row in zip(*values)]

    def _context_column(self, name: str, column: Any, row_list: list[int]) -> list[Any]:
        if isinstance(column, np.ndarray):
            picked = column[row_list]
            missing = np.isnan(picked)
            if self._kinds[name] is FieldType.INT:
                out = np.where(missing, 0, picked).astype(np.int64).tolist()
            else:
                out = picked.tolist()
            if missing.any():
                for i in np.flatnonzero(missing).tolist():
                    out[i] = None
            return out
        # Strings, booleans and datetimes as validated; orjson writes aware
        # datetimes as ISO 8601 itself, faster than isoformat() per row.
        return [column[i] for i in row_list]

    @staticmethod
    def _text_columns(columns: dict[str, Any], names: Sequence[str], row_list: list[int]) -> list[dict[str, str]]:
        if not names:
            return [{} for _ in row_list]
        picked = [[columns[name][i] for i in row_list] for name in names]
        return [{name: value for name, value in zip(names, row) if value is not None} for row in zip(*picked)]
