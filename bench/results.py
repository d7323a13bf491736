"""latest.json: each phase's raw results, the summary keys the issue names
(pipeline.*, gateway.*, memory_mb.*, ...) derived from them, and each
target checked against the figures."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from bench.measure import ratio

# Peak RSS, MB, that every service but the trainer stays under.
MEMORY_LIMIT_MB = 300.0
SERVICES = ("generator", "normalizer", "consumer", "gateway", "trainer")


def _service_of(process: str) -> str | None:
    base = process.split("-")[0]
    return base if base in SERVICES else None


def memory_by_service(phases: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """Each service's highest peak RSS over every phase it ran in, and that phase."""
    peak: dict[str, float] = {}
    where: dict[str, str] = {}
    for phase, result in phases.items():
        found: dict[str, float] = {}
        processes = result.get("memory_mb")
        if isinstance(processes, dict):
            for name, mb in processes.items():
                if (service := _service_of(name)) is not None:
                    found[service] = max(found.get(service, 0.0), float(mb))
        elif phase == "gateway" and isinstance(processes, float | int):
            found["gateway"] = float(processes)
        trainer = result.get("trainer")
        if isinstance(trainer, dict) and trainer.get("memory_mb"):
            found["trainer"] = float(trainer["memory_mb"])
        for service, mb in found.items():
            if mb > peak.get(service, 0.0):
                peak[service], where[service] = mb, phase
    return peak, where


def summary(phases: dict[str, Any]) -> dict[str, Any]:
    pipeline = phases.get("pipeline", {})
    http = phases.get("http_chain", {})
    gateway = phases.get("gateway", {})
    scaling = phases.get("scaling", {})
    memory, memory_phase = memory_by_service(phases)

    def endpoint(name: str) -> dict[str, Any] | None:
        figures = gateway.get(name)
        if not figures:
            return None
        return {key: figures.get(key) for key in ("rps", "p50_ms", "p99_ms", "errors")}

    one = pipeline.get("events_per_s")
    two = scaling.get("events_per_s")
    return {
        "pipeline": {
            "events_per_s": one,
            "passthrough_events_per_s": phases.get("passthrough", {}).get("events_per_s"),
            "http_chain_events_per_s": http.get("events_per_s"),
            "http_chain_best_events_per_s": http.get("best_events_per_s"),
            "latency_ms": phases.get("latency", {}).get("latency_ms"),
            "latency_rate": phases.get("latency", {}).get("rate"),
        },
        "gateway": {
            "regress": endpoint("regress"),
            "regress_1_connection": endpoint("regress_1_connection"),
            "predict": endpoint("predict"),
            "flask_pandas": endpoint("flask_pandas"),
            "noop": endpoint("noop"),
            "batch_rows_per_s": gateway.get("batch_rows_per_s"),
        },
        "scaling": {"consumers_1_events_per_s": one, "consumers_2_events_per_s": two, "speedup": ratio(two, one)},
        "memory_mb": memory,
        "memory_phase": memory_phase,
    }


def _target(name: str, value: float | None, goal: str, met: bool | None, detail: str = "") -> dict[str, Any]:
    if value is not None and isinstance(value, float) and math.isnan(value):
        value = None
    return {"target": name, "value": value, "goal": goal, "met": met if value is not None else None, "detail": detail}


def targets(summary_: dict[str, Any]) -> list[dict[str, Any]]:
    p = summary_["pipeline"]
    g = summary_["gateway"]
    eps = p.get("events_per_s")
    http = p.get("http_chain_best_events_per_s") or p.get("http_chain_events_per_s")
    vs_http = ratio(eps, http)
    vs_pass = ratio(eps, p.get("passthrough_events_per_s"))
    p99 = (p.get("latency_ms") or {}).get("p99")
    regress = g.get("regress") or {}
    flask = (g.get("flask_pandas") or {}).get("rps")
    noop = (g.get("noop") or {}).get("rps")
    vs_flask = ratio(regress.get("rps"), flask)
    vs_noop = ratio(regress.get("rps"), noop)
    rows = [
        _target("pipeline / HTTP chain", vs_http, ">= 20", vs_http is not None and vs_http >= 20,
                "against the HTTP chain's best client count"),
        _target("pipeline / pass-through", vs_pass, ">= 0.3", vs_pass is not None and vs_pass >= 0.3),
        _target("pipeline events/s", eps, ">= 10000", eps is not None and eps >= 10_000),
        _target(f"end-to-end p99 ms at {p['latency_rate']:,.0f} events/s" if p.get("latency_rate")
                else "end-to-end p99 ms at the fixed rate", p99, "< 500",
                p99 is not None and p99 < 500),
        _target("/regress / Flask-pandas", vs_flask, ">= 10", vs_flask is not None and vs_flask >= 10),
        _target("/regress / constant endpoint", vs_noop, ">= 0.5", vs_noop is not None and vs_noop >= 0.5),
        _target("/regress p99 ms", regress.get("p99_ms"), "< 10",
                regress.get("p99_ms") is not None and regress["p99_ms"] < 10),
    ]
    for service, mb in sorted(summary_["memory_mb"].items()):
        if service == "trainer":
            rows.append(_target(f"{service} peak RSS MB", mb, "exempt", None, "the issue sets the trainer aside"))
        else:
            rows.append(_target(f"{service} peak RSS MB", mb, f"< {MEMORY_LIMIT_MB:g}", mb < MEMORY_LIMIT_MB))
    return rows


def compose(phases: dict[str, Any], run: dict[str, Any], machine: dict[str, Any],
            previous: dict[str, Any] | None = None) -> dict[str, Any]:
    derived = summary(phases)
    return {**derived, "targets": targets(derived), "run": run, "runs": contributing_runs(previous, run),
            "machine": machine, "phases": phases}


def contributing_runs(previous: dict[str, Any] | None, run: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs whose figures the document holds (a partial run keeps some of
    an earlier run's), oldest first, each with its load average and command."""
    earlier = (previous or {}).get("runs") or ([previous["run"]] if previous and previous.get("run") else [])
    used = set((run.get("phase_measured_at") or {}).values())
    kept = [r for r in earlier if r.get("started_at") in used and r.get("started_at") != run.get("started_at")]
    brief = ("started_at", "seconds", "command", "loadavg_start", "loadavg_end", "phases_run", "quick")
    return [{key: r.get(key) for key in brief} for r in [*kept, run]]


def merge(previous: dict[str, Any] | None, phases: dict[str, Any], measured_at: str) -> tuple[dict[str, Any], dict[str, str]]:
    """This run's phases over a previous latest.json's (a partial run with
    --only keeps the other phases' last figures); also when each was measured."""
    merged: dict[str, Any] = dict((previous or {}).get("phases", {}))
    when: dict[str, str] = dict((previous or {}).get("run", {}).get("phase_measured_at", {}))
    for name, result in phases.items():
        merged[name] = result
        when[name] = measured_at
    return merged, when


def write(out_dir: Path, document: dict[str, Any], started: datetime) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    encoded = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    latest = out_dir / "latest.json"
    dated = out_dir / f"{started.strftime('%Y-%m-%dT%H%M%S')}.json"
    dated.write_bytes(encoded)
    latest.write_bytes(encoded)
    return latest, dated


def read(path: Path) -> dict[str, Any] | None:
    return orjson.loads(path.read_bytes()) if path.exists() else None
