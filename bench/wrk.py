"""Closed-loop HTTP load with wrk (Debian's package), parsed into numbers.

wrk keeps a fixed number of connections busy for a fixed time, so it is a
bounded load; it targets 127.0.0.1 only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

_LUA = """
wrk.method = "{method}"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format("FLUXO p50_us=%d p99_us=%d requests=%d errors=%d non2xx=%d\\n",
    latency:percentile(50), latency:percentile(99), summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
"""


@dataclass(frozen=True)
class LoadResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int

    def as_dict(self) -> dict[str, float]:
        return {"rps": round(self.rps, 1), "p50_ms": round(self.p50_ms, 3), "p99_ms": round(self.p99_ms, 3),
                "requests": self.requests, "errors": self.errors}


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env, stdout=subprocess.DEVNULL)
        path = shutil.which("wrk")
    if not path:
        raise RuntimeError("wrk is missing: install Debian's wrk package (apt-get install wrk)")
    return path


def run_wrk(url: str, body: str, *, seconds: int = 10, connections: int = 8, threads: int = 1,
            method: str = "POST") -> LoadResult:
    if not url.startswith(("http://127.", "http://localhost")):
        raise ValueError("load targets loopback addresses only")
    wrk = ensure_wrk()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA.format(method=method, body=body))
    try:
        out = subprocess.run(
            [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", script.name, url],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        ).stdout
    finally:
        os.unlink(script.name)
    summary = re.search(r"FLUXO p50_us=(\d+) p99_us=(\d+) requests=(\d+) errors=(\d+) non2xx=(\d+)", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not summary or not rate:
        raise RuntimeError(f"could not parse wrk output:\n{out}")
    p50, p99, requests, errors, non2xx = (int(v) for v in summary.groups())
    return LoadResult(float(rate.group(1)), p50 / 1000, p99 / 1000, requests, errors + non2xx)
