"""The generator's code names no built-in stream's field: simulators speak
their own roles, and declarations bind roles to fields."""

from __future__ import annotations

import re
import subprocess

from shared.streams import builtin_streams
from tests.processes import REPO

CHECKED = ("services/generator",)


def test_no_quoted_field_name_in_the_generator() -> None:
    names = sorted({name for spec in builtin_streams() for name in spec.field_names})
    assert {"pressure_mca", "renewables_share_energy", "years_education", "consumed_kwh"} <= set(names)
    pattern = "[\"'](" + "|".join(re.escape(name) for name in names) + ")[\"']"
    found = subprocess.run(
        ["git", "grep", "--untracked", "-nE", pattern, "--", *CHECKED, ":!*.yaml"],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=False,
    )
    assert found.returncode in (0, 1), found.stderr  # 1: no match
    assert found.stdout == ""
