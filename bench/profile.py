"""py-spy profiles of running services, summarised into the results.

``py-spy record --format raw`` writes collapsed stacks ("frame;frame;... N");
the summary lists where samples were taken (self time, by function) and what
they were under (inclusive time), as shares of all samples. A flame graph
(SVG) is written next to it for reading by eye.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

WRAPPER_SHARE = 0.9
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str:
    local = Path(sys.executable).with_name("py-spy")
    found = str(local) if local.exists() else shutil.which("py-spy")
    if not found:
        raise RuntimeError("py-spy is missing: .venv/bin/pip install py-spy")
    return found


def start_record(pid: int, seconds: int, out: Path, *, fmt: str = "raw", rate: int = 100) -> subprocess.Popen[bytes]:
    """Sample ``pid`` for ``seconds`` in the background (non-blocking: the
    target is never paused)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [py_spy(), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(rate),
         "--nonblocking", "--format", fmt, "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _short(frame: str) -> str:
    """'handle (services/normalizer/handler.py:123)' -> 'services/normalizer/handler.py:handle'."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match.group("file")
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{match.group('func')}"


def summarise(collapsed: str, top: int = 15) -> dict[str, object]:
    """Shares of samples by function: self (the innermost frame) and inclusive."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";") if frame]
        # py-spy's first frame is the thread ("process 1:"MainThread"" etc.).
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return {"samples": 0, "self": [], "inclusive": []}

    def shares(counter: Counter[str]) -> list[list[object]]:
        # Frames under nearly every sample (the entrypoint, the event loop)
        # say nothing about where the time goes.
        telling = [(name, n) for name, n in counter.most_common() if n < WRAPPER_SHARE * total]
        return [[name, round(100 * n / total, 1)] for name, n in telling[:top]]

    return {"samples": total, "self": shares(own), "inclusive": shares(inclusive)}
