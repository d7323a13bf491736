"""A stream whose user-supplied text is HTML: the console must show it as text.

Stream, field and task names are identifiers (the declaration format refuses
anything else, `<` included), so the HTML goes where a user may write free
text: the description, a category value, a field's and a task's
description, and an event's values.
"""

from __future__ import annotations

import uuid
from typing import Any

SCRIPT = "<script>alert('fluxo-xss')</script>"
IMAGE = '<img src="x" onerror="alert(1)">'


def evil_name() -> str:
    return f"evil_{uuid.uuid4().hex[:8]}"


def evil_declaration(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"A stream described with {IMAGE}",
        "key": "device",
        "fields": [
            {"name": "device", "type": "str"},
            {"name": "colour", "type": "category", "categories": ["red", SCRIPT]},
            {"name": "size", "type": "float", "minimum": 0, "maximum": 10, "description": SCRIPT},
            {"name": "weight", "type": "float", "minimum": 0, "required": False},
        ],
        "context": ["device", "colour"],
        "tasks": [{"name": "weight", "kind": "regression", "target": "weight", "features": ["size", "colour"],
                   "description": IMAGE}],
    }


def evil_record() -> dict[str, Any]:
    return {"device": SCRIPT, "colour": SCRIPT, "size": 3.5}
