"""The benchmark harness's arithmetic, bookkeeping and rendering, without servers."""

from __future__ import annotations

import pytest

from bench import report, results
from bench.__main__ import parse_args
from bench.measure import latency_summary, ratio, sustained_rate
from bench.profile import summarise
from bench.scrape import parse_loop_metrics
from bench.training import projection


def test_rate_starts_at_the_first_output_and_leaves_its_events_out() -> None:
    # 100 events written at t=10 (work done before the clock starts), then
    # 300 more over the next 2 seconds.
    rate = sustained_rate([(10.0, 100), (11.0, 150), (12.0, 100), (12.0, 50)])
    assert (rate.events, rate.counted, rate.seconds) == (400, 300, 2.0)
    assert rate.events_per_s == 150.0


def test_rate_of_nothing_or_of_one_instant_is_zero() -> None:
    assert sustained_rate([]).events_per_s == 0.0
    assert sustained_rate([(5.0, 10)]).events_per_s == 0.0


def test_latency_summary_percentiles() -> None:
    summary = latency_summary(list(range(1, 101)))
    assert summary["count"] == 100
    assert summary["p50"] == pytest.approx(50.5)
    assert summary["p99"] == pytest.approx(99.01)
    assert summary["max"] == 100
    assert latency_summary([]) == {"count": 0}


def test_ratio_needs_both_figures() -> None:
    assert ratio(30.0, 3.0) == 10.0
    assert ratio(None, 3.0) is None
    assert ratio(3.0, 0.0) is None


PHASES = {
    "pipeline": {"events_per_s": 12_000.0, "memory_mb": {"normalizer": 120.0, "consumer": 150.0},
                 "trainer": {"memory_mb": 450.0}},
    "scaling": {"events_per_s": 18_000.0, "memory_mb": {"normalizer": 110.0, "consumer-1": 160.0, "consumer-2": 155.0}},
    "passthrough": {"events_per_s": 30_000.0, "memory_mb": 80.0},
    "http_chain": {"events_per_s": 300.0, "best_events_per_s": 700.0, "memory_mb": {"http_normalizer": 999.0}},
    "latency": {"rate": 1000, "latency_ms": {"p50": 40.0, "p99": 600.0}, "memory_mb": {"generator": 70.0}},
    "gateway": {"regress": {"rps": 3000.0, "p99_ms": 4.0}, "flask_pandas": {"rps": 200.0}, "noop": {"rps": 7000.0},
                "batch_rows_per_s": 500_000.0, "memory_mb": 310.0},
}


def test_summary_has_the_keys_the_issue_names() -> None:
    summary = results.summary(PHASES)
    assert summary["pipeline"]["events_per_s"] == 12_000.0
    assert summary["pipeline"]["passthrough_events_per_s"] == 30_000.0
    assert summary["pipeline"]["http_chain_events_per_s"] == 300.0
    assert summary["pipeline"]["latency_ms"]["p99"] == 600.0
    assert summary["gateway"]["regress"]["rps"] == 3000.0
    assert summary["gateway"]["batch_rows_per_s"] == 500_000.0
    assert summary["scaling"]["speedup"] == 1.5
    # Replicas count as their service, at their highest peak; baselines are no service.
    assert summary["memory_mb"] == {"normalizer": 120.0, "consumer": 160.0, "trainer": 450.0,
                                    "generator": 70.0, "gateway": 310.0}
    assert summary["memory_phase"]["consumer"] == "scaling"


def test_targets_are_judged_against_the_figures() -> None:
    verdicts = {t["target"]: t["met"] for t in results.targets(results.summary(PHASES))}
    assert verdicts["pipeline / HTTP chain"] is False  # 12,000 / 700 (the best client count) < 20
    assert verdicts["pipeline / pass-through"] is True
    assert verdicts["pipeline events/s"] is True
    assert verdicts["end-to-end p99 ms at 1,000 events/s"] is False
    assert verdicts["/regress / Flask-pandas"] is True
    assert verdicts["/regress / constant endpoint"] is False
    assert verdicts["/regress p99 ms"] is True
    assert verdicts["gateway peak RSS MB"] is False
    assert verdicts["trainer peak RSS MB"] is None  # exempt


def test_a_target_without_a_figure_is_neither_met_nor_missed() -> None:
    verdicts = {t["target"]: t["met"] for t in results.targets(results.summary({}))}
    assert verdicts["pipeline events/s"] is None
    assert verdicts["/regress p99 ms"] is None


def test_a_partial_run_keeps_the_other_phases() -> None:
    previous = {"phases": {"gateway": {"x": 1}, "pipeline": {"x": 2}},
                "run": {"phase_measured_at": {"gateway": "then", "pipeline": "then"}}}
    merged, when = results.merge(previous, {"pipeline": {"x": 3}}, "now")
    assert merged == {"gateway": {"x": 1}, "pipeline": {"x": 3}}
    assert when == {"gateway": "then", "pipeline": "now"}


def test_report_replaces_only_the_generated_block() -> None:
    doc = results.compose(PHASES, {"started_at": "t", "command": "python -m bench"}, {"cores": 2})
    generated = report.render(doc)
    assert "| pipeline events/s | 12,000 | >= 10000 | **met** |" in generated
    assert "**missed**" in generated
    text = f"# Benchmarks\n\nmethod\n\n{report.START}\nold\n{report.END}\n\nanalysis\n"
    updated = report.update_document(text, generated)
    assert updated.startswith("# Benchmarks\n\nmethod\n\n")
    assert updated.endswith("\n\nanalysis\n")
    assert "old" not in updated
    assert report.update_document(updated, generated) == updated


def test_profile_summary_shares() -> None:
    collapsed = "\n".join([
        "main (a.py:1);loop (b.py:2);encode (c.py:3) 55",
        "main (a.py:1);loop (b.py:2);send (d.py:4) 30",
        "main (a.py:1);idle (e.py:5) 15",
    ])
    summary = summarise(collapsed)
    assert summary["samples"] == 100
    assert summary["self"][0] == ["c.py:encode", 55.0]
    inclusive = dict(map(tuple, summary["inclusive"]))
    assert inclusive["b.py:loop"] == 85.0
    assert "a.py:main" not in inclusive  # under every sample: says nothing


def test_loop_metrics_from_prometheus_text() -> None:
    text = "\n".join([
        "# TYPE fluxo_batch_size_events histogram",
        'fluxo_batch_size_events_bucket{service="n",le="+Inf"} 4.0',
        'fluxo_batch_size_events_count{service="n"} 4.0',
        'fluxo_batch_size_events_sum{service="n"} 6000.0',
        "# TYPE fluxo_handler_latency_seconds histogram",
        'fluxo_handler_latency_seconds_count{service="n"} 4.0',
        'fluxo_handler_latency_seconds_sum{service="n"} 2.0',
        "# TYPE fluxo_events_in_total counter",
        'fluxo_events_in_total{service="n",topic="a"} 4000.0',
        'fluxo_events_in_total{service="n",topic="b"} 2000.0',
    ])
    figures = parse_loop_metrics(text)
    assert figures["events_in"] == 6000.0
    assert figures["mean_batch"] == 1500.0
    assert figures["mean_handler_ms"] == 500.0


def test_training_projection() -> None:
    previous = {"status": "run", "rows": 100_000, "fit_s": 10.0, "iterations": 40}
    assert projection(previous, 1_000_000, None) == pytest.approx(100.0)
    assert projection(previous, 1_000_000, 10) == pytest.approx(25.0)
    assert projection(None, 1_000, None) is None
    assert projection({"status": "not run"}, 1_000, None) is None


def test_only_accepts_known_phases() -> None:
    assert parse_args(["--only", "gateway,pipeline"]).phases == ["pipeline", "gateway"]
    assert parse_args([]).phases[0] == "pipeline"
    with pytest.raises(SystemExit):
        parse_args(["--only", "nonsense"])


def test_a_partial_run_lists_the_runs_its_figures_come_from() -> None:
    first = {"started_at": "t1", "command": "python -m bench", "loadavg_start": [1, 1, 1]}
    older = {"started_at": "t0", "command": "python -m bench"}
    second = {"started_at": "t2", "command": "python -m bench --only gateway",
              "phase_measured_at": {"pipeline": "t1", "gateway": "t2"}}
    runs = results.contributing_runs({"runs": [older, first]}, second)
    assert [r["started_at"] for r in runs] == ["t1", "t2"]  # t0 holds no figure any more
    assert runs[0]["loadavg_start"] == [1, 1, 1]
    # A document written before runs were listed still names its run.
    assert [r["started_at"] for r in results.contributing_runs({"run": first}, second)] == ["t1", "t2"]
