"""Declaration files: YAML or JSON on disk, and the built-in streams shipped in the package."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import orjson
import yaml

from shared.streams.declaration import DeclarationInvalid, Problem, StreamSpec, parse_declaration

BUILTIN_DIR = Path(__file__).with_name("builtin")


def read_declaration_text(text: str | bytes) -> Any:
    """YAML or JSON text as data (JSON is YAML, but orjson is stricter and
    faster for the common API case); a parse error is a DeclarationInvalid."""
    raw = text.encode() if isinstance(text, str) else text
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise DeclarationInvalid([Problem(path="", reason=f"not YAML or JSON{where}: {getattr(error, 'problem', error)}")]) from None


def load_declaration(path: Path) -> StreamSpec:
    return parse_declaration(read_declaration_text(path.read_bytes()))


@cache
def builtin_streams() -> tuple[StreamSpec, ...]:
    """The declarations shipped with Fluxo, in file-name order."""
    return tuple(load_declaration(path) for path in sorted(BUILTIN_DIR.glob("*.yaml")))


def builtin_stream(name: str) -> StreamSpec:
    for spec in builtin_streams():
        if spec.name == name:
            return spec
    raise KeyError(f"no built-in stream {name!r}")
