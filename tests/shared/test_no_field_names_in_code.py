"""Streams are data: no Python file outside the declaration files and the
tests names a built-in stream's columns (what `git grep` would show)."""

from __future__ import annotations

import re
import subprocess

from shared.streams import builtin_streams
from tests.processes import REPO


# Words that are also the platform's own vocabulary (a stream's name, an
# entity's latitude, a reading's timestamp): code says them about any stream.
GENERIC = frozenset({"name", "city", "age", "year", "timestamp", "latitude", "longitude"})


def _columns() -> set[str]:
    names: set[str] = set()
    for spec in builtin_streams():
        names.update(spec.columns)
    return names - GENERIC


def test_no_python_file_outside_tests_names_a_built_in_column() -> None:
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True, check=True,
                           timeout=30).stdout.split()
    code = [f for f in files if not f.startswith("tests/")]
    assert len(code) > 50  # the listing worked
    names = _columns()
    # A column named in code: as a string literal, or (for compound names such
    # as pressure_mca, which are no English word) as any identifier.
    quoted = re.compile(r"""["'](%s)["']""" % "|".join(map(re.escape, sorted(names))))
    compound = re.compile(r"\b(%s)\b" % "|".join(map(re.escape, sorted(n for n in names if "_" in n))))
    found = []
    for name in code:
        text = (REPO / name).read_text(errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            match = quoted.search(line) or compound.search(line)
            if match:
                found.append(f"{name}:{number}: {match.group(1)}: {line.strip()[:100]}")
    assert not found, "columns of built-in streams named in code:\n" + "\n".join(found)
