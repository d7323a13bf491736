"""Baseline 2, the original design: every event is an HTTP request from the
generator to a normalizer endpoint, which calls a predict endpoint with
requests (bench/apps/http_normalizer.py, bench/apps/http_predict.py).

The generator side posts pre-built raw events with requests, from 1 client
(the original's sequential generator) and from a few concurrent clients (a
generous variant), each for a bounded count or time.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import requests

from bench.context import Bench
from bench.datasets import make_source
from bench.measure import latency_summary
from bench.models import PreparedModel
from bench.procs import fleet, wait_until
from services.generator.messages import Emitter
from shared.infra.ports import free_port, port_open
from shared.streams import builtin_streams

WARMUP = 30


def raw_messages(per_stream: int, seed: int = 5) -> list[tuple[str, bytes]]:
    """Raw events of all streams, interleaved (one of each in turn)."""
    streams = [[(name, value) for _, value in Emitter(make_source(name, seed), seed=seed).batch(per_stream)]
               for name in (spec.name for spec in builtin_streams())]
    return [message for group in zip(*streams) for message in group]


def drive(url: str, messages: list[tuple[str, bytes]], clients: int, seconds: float) -> dict[str, Any]:
    """Post ``messages`` from ``clients`` threads until all are sent or
    ``seconds`` pass; the rate is completed events over elapsed time."""
    feed = iter(messages)
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []
    stop_at = time.monotonic() + seconds

    def client() -> None:
        session = requests.Session()
        mine: list[float] = []
        while time.monotonic() < stop_at:
            with lock:
                item = next(feed, None)
            if item is None:
                break
            stream, body = item
            began = time.perf_counter()
            answer = session.post(f"{url}/ingest/{stream}", data=body, headers={"Content-Type": "application/json"})
            mine.append((time.perf_counter() - began) * 1000)
            if answer.status_code != 200 or not orjson.loads(answer.content).get("predictions"):
                failures.append(f"{answer.status_code}: {answer.text[:200]}")
        with lock:
            latencies.extend(mine)

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    done = len(latencies)
    return {
        "clients": clients,
        "events": done,
        "seconds": round(elapsed, 2),
        "events_per_s": round(done / elapsed, 1) if elapsed else 0.0,
        "errors": len(failures),
        "first_error": failures[0] if failures else None,
        "request_ms": latency_summary(latencies),
    }


async def http_chain(bench: Bench, prepared: dict[tuple[str, str], PreparedModel]) -> dict[str, Any]:
    plan = bench.plan
    models_file = bench.workdir / "http-models.json"
    models_file.write_bytes(orjson.dumps([
        {"stream": m.meta.stream, "task": m.meta.task, "bundle_dir": m.bundle_dir, "sha256": m.sha256}
        for m in prepared.values()
    ]))
    per_stream = (WARMUP + plan.http_chain_events) // len(builtin_streams()) + 1
    runs: dict[str, Any] = {}
    with fleet(bench.logdir("http_chain")) as group:
        predict_port, normalizer_port = free_port(), free_port()
        group.start("http_predict", ["-m", "bench.apps.http_predict"], {
            "ARTIFACT_DIR": str(bench.artifact_dir), "BENCH_MODELS": str(models_file), "PORT": str(predict_port),
        })
        group.start("http_normalizer", ["-m", "bench.apps.http_normalizer"], {
            "PREDICT_URL": f"http://127.0.0.1:{predict_port}/score", "PORT": str(normalizer_port),
        })
        wait_until(lambda: port_open(predict_port) and port_open(normalizer_port), 60, "HTTP chain apps not up", group)
        url = f"http://127.0.0.1:{normalizer_port}"
        for clients in plan.http_chain_clients:
            messages = raw_messages(per_stream, seed=5 + clients)
            warm = drive(url, messages[:WARMUP], 1, 30)
            if warm["errors"]:
                raise RuntimeError(f"the HTTP chain fails: {warm['first_error']}")
            measured = messages[WARMUP:WARMUP + plan.http_chain_events]
            runs[str(clients)] = drive(url, measured, clients, plan.http_chain_seconds)
        memory = group.memory_mb()
    original = runs[str(plan.http_chain_clients[0])]
    best = max(runs.values(), key=lambda run: run["events_per_s"])
    return {
        "events_per_s": original["events_per_s"],
        "best_events_per_s": best["events_per_s"],
        "best_clients": best["clients"],
        "runs": runs,
        "memory_mb": memory,
    }

