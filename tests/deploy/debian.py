"""Install a Debian package when its program is missing (tests run as root in CI)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def ensure_program(program: str, package: str) -> str:
    """Path of ``program``, installing Debian's ``package`` first if needed.

    Fails the test (never skips) when the program is missing and cannot be
    installed: the checks that need it are part of the suite.
    """
    found = shutil.which(program)
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"{program} is missing and cannot be installed here: apt-get install {package}", pytrace=False)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", package],
    ):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
        if result.returncode != 0:
            pytest.fail(
                f"{' '.join(command)} failed ({result.returncode}):\n{(result.stdout + result.stderr)[-3000:]}",
                pytrace=False,
            )
    found = shutil.which(program)
    if not found:
        pytest.fail(f"installed {package} but {program} is still not on PATH", pytrace=False)
    return found
