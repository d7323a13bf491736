"""Debian's Chromium, the browser the web console's tests drive headless.

Playwright's own browser download cannot work here (only package registries
are reachable), so the tests drive the distribution's build, installed the
way PostgreSQL is: with apt-get when it is missing and we are root.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from ._common import apt_install, may_apt_install

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "install Debian's chromium package (apt-get install chromium)"

# Headless in a sandbox-less container as root, on a machine whose only
# network is loopback: without the networking flags Chromium keeps dialling
# Google's update, sync and component servers and logs each refusal.
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def find_chromium() -> Path:
    """Path of the chromium executable, installing Debian's package if we may."""
    if not CHROMIUM.is_file() and may_apt_install():
        apt_install("chromium", hint=INSTALL_HINT)
    if not CHROMIUM.is_file():
        raise RuntimeError(f"{CHROMIUM} not found: {INSTALL_HINT}")
    return CHROMIUM


def chromium_version(executable: Path = CHROMIUM) -> str:
    """e.g. "Chromium 156.0.8078.73" ("Chromium" when it does not say)."""
    try:
        out = subprocess.run(
            [str(executable), "--version"], capture_output=True, text=True, check=False, timeout=30
        ).stdout
    except subprocess.TimeoutExpired:
        return "Chromium"
    match = re.search(r"Chromium \S+", out)
    return match.group(0) if match else "Chromium"
