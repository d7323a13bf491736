"""Every benchmark phase runs, at tiny sizes, against the real broker and
PostgreSQL, and reports figures that hang together. No timing is asserted:
benchmarks are not tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bench import report, results
from bench.__main__ import PHASES, Progress, run_phases
from bench.context import Bench, Servers
from bench.plan import QUICK
from tests.streams import STREAMS

TINY = dataclasses.replace(
    QUICK,
    # Enough for several consumer batches (2,000 events each), so a rate exists.
    pipeline_events=1_000,
    pipeline_timeout_s=120,
    model_rows=600,
    http_chain_events=24,
    http_chain_seconds=10,
    http_chain_clients=(1, 2),
    latency_rate=60,
    latency_seconds=2,
    wrk_seconds=1,
    wrk_connections=2,
    batch_rows=20,
    training_sizes=(300, 600),
    training_fit_cap_s=60,
    training_budget_s=60,
    trainer_window=600,
)


async def test_every_phase_runs_and_reports(kafka_bootstrap: str, postgres_dsn: str, tmp_path: Path) -> None:
    bench = Bench(Servers(kafka_bootstrap, postgres_dsn, "test broker", "test database"), TINY, tmp_path)
    phases = await run_phases(bench, list(PHASES), None, Progress())
    failed = {name: result["error"] for name, result in phases.items() if "error" in result}
    assert not failed

    sent = sum(TINY.pipeline_events for _ in STREAMS)
    for name in ("pipeline", "scaling"):
        run = phases[name]
        assert run["complete"], run
        assert run["events"] == sent
        assert run["rows"] == run["rows_expected"]
        assert run["unscored_rows"] == 0  # every task had its model
        assert run["events_per_s"] > 0
        assert set(run["exit_codes"].values()) == {0}  # SIGTERM stops every service cleanly
        assert all(mb > 0 for mb in run["memory_mb"].values())
    assert phases["scaling"]["memory_mb"].keys() == {"normalizer", "consumer-1", "consumer-2"}
    trainer = phases["pipeline"]["trainer"]
    assert trainer["complete"] and {r["status"] for r in trainer["runs"]} == {"done"}

    passthrough = phases["passthrough"]
    assert passthrough["reused_pipeline_events"] and passthrough["complete"]
    assert passthrough["events"] == sent

    latency = phases["latency"]
    assert latency["complete"]
    assert latency["latency_ms"]["count"] == latency["events"] > 0
    assert 0 < latency["latency_ms"]["p50"] <= latency["latency_ms"]["p99"]

    for run in phases["http_chain"]["runs"].values():
        assert run["events"] > 0 and run["errors"] == 0

    gateway = phases["gateway"]
    for name in ("regress", "regress_1_connection", "predict", "batch", "flask_pandas", "noop"):
        assert gateway[name]["requests"] > 0 and gateway[name]["errors"] == 0, (name, gateway[name])
    assert gateway["batch_rows_per_s"] == gateway["batch"]["rps"] * TINY.batch_rows

    training = phases["training"]["runs"]
    algorithms = sum(len(task.allowed_algorithms) for stream in STREAMS.values() for task in stream.tasks)
    assert len(training) == algorithms * len(TINY.training_sizes)
    assert all(run["status"] == "run" and run["bundle_bytes"] > run["onnx_bytes"] > 0 for run in training)

    document = results.compose(phases, {"started_at": "now", "command": "test"}, {"cores": 1})
    assert document["pipeline"]["events_per_s"] == phases["pipeline"]["events_per_s"]
    assert {"normalizer", "consumer", "generator", "gateway", "trainer"} <= document["memory_mb"].keys()
    rendered = report.render(document)
    assert "### Training" in rendered and "### Gateway" in rendered
