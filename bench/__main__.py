"""``python -m bench``: every benchmark of issue 6 against real Kafka and
PostgreSQL, then bench/results/latest.json, a dated copy and BENCHMARKS.md.

    python -m bench [--only pipeline,gateway] [--quick] [--out DIR] [--profile] [--no-report]

Servers: KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when set, else a local broker
and PostgreSQL started for the run. --quick runs tiny sizes (a smoke run; its
results go to $TMPDIR/fluxo-bench-quick/ and BENCHMARKS.md is left alone). With
--only, the other phases keep their figures from the previous latest.json.
--profile samples the pipeline's services with py-spy while they run (the
figures of such a run are perturbed by the sampling).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report, results
from bench.ceiling import passthrough
from bench.context import Bench, servers
from bench.gateway import gateway
from bench.http_chain import http_chain
from bench.latency import latency
from bench.machine import describe
from bench.models import PreparedModel, prepare_models
from bench.pipeline import throughput
from bench.plan import FULL, QUICK
from bench.trainer_step import trainer_step
from bench.training import training

REPO = Path(__file__).resolve().parents[1]
PHASES = ("pipeline", "passthrough", "scaling", "latency", "http_chain", "gateway", "training")
NEEDS_MODELS = frozenset({"pipeline", "scaling", "latency", "http_chain", "gateway"})
# The whole run stays under 15 minutes; phases that adapt (training) use what is left.
RUN_BUDGET_S = 14 * 60


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=[],
                        help=f"comma-separated phases to run (of {', '.join(PHASES)}); default: all")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of the harness")
    parser.add_argument("--out", type=Path, help="results directory (default bench/results; --quick: $TMPDIR/fluxo-bench-quick; --profile: bench/results/profile)")
    parser.add_argument("--profile", action="store_true", help="py-spy profiles of the pipeline's services")
    parser.add_argument("--no-report", action="store_true", help="leave BENCHMARKS.md alone")
    parser.add_argument("--doc", type=Path, default=REPO / "BENCHMARKS.md", help="document to update")
    args = parser.parse_args(argv)
    chosen = [name.strip() for item in args.only for name in item.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in PHASES]
    if unknown:
        parser.error(f"unknown phases {unknown} (phases: {', '.join(PHASES)})")
    args.phases = [name for name in PHASES if not chosen or name in chosen]
    return args


class Progress:
    def __init__(self) -> None:
        self.began = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[bench {time.monotonic() - self.began:6.1f} s] {message}", file=sys.stderr, flush=True)


async def run_phases(bench: Bench, phases: list[str], profile_dir: Path | None, say: Progress) -> dict[str, Any]:
    done: dict[str, Any] = {}
    prepared: dict[tuple[str, str], PreparedModel] = {}
    if NEEDS_MODELS.intersection(phases):
        say(f"training the models the pipeline and the gateway serve ({bench.plan.model_rows:,} rows per task)")
        prepared = await asyncio.to_thread(prepare_models, bench.artifact_dir, bench.plan.model_rows)

    def pipeline_run() -> Awaitable[dict[str, Any]]:
        return throughput(bench, prepared, consumers=1, phase="pipeline", profile_dir=profile_dir, after=trainer_step)

    def passthrough_run() -> Awaitable[dict[str, Any]]:
        source = done.get("pipeline", {})
        return passthrough(bench, source.get("topic_prefix"), source.get("events_sent"))

    steps: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "pipeline": pipeline_run,
        "passthrough": passthrough_run,
        "scaling": lambda: throughput(bench, prepared, consumers=2, phase="scaling"),
        "latency": lambda: latency(bench, prepared),
        "http_chain": lambda: http_chain(bench, prepared),
        "gateway": lambda: gateway(bench, prepared),
        "training": lambda: training(bench),
    }
    for name in phases:
        say(f"phase {name}")
        began = time.monotonic()
        try:
            done[name] = await steps[name]()
        except Exception as error:  # noqa: BLE001 - one broken phase must not lose the others' figures
            traceback.print_exc()
            done[name] = {"error": f"{type(error).__name__}: {error}"[:4000]}
        done[name]["phase_seconds"] = round(time.monotonic() - began, 1)
        done[name]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        say(f"phase {name} done in {done[name]['phase_seconds']} s" + (" (FAILED)" if "error" in done[name] else ""))
    return done


def _print_targets(document: dict[str, Any]) -> None:
    for target in document["targets"]:
        verdict = {True: "met", False: "MISSED", None: "-"}[target["met"]]
        print(f"{target['target']:<40} {str(target['value']):>12}  goal {target['goal']:<8} {verdict}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    # Quick and profiled runs never replace the real figures.
    if args.out is not None:
        out_dir = args.out
    elif args.quick:
        out_dir = Path(tempfile.gettempdir()) / "fluxo-bench-quick"
    else:
        out_dir = REPO / "bench" / "results" / ("profile" if args.profile else "")
    started = datetime.now(UTC)
    loadavg_start = [round(x, 2) for x in os.getloadavg()]
    say = Progress()
    say(f"phases: {', '.join(args.phases)}; load average {loadavg_start}")
    profile_dir = out_dir / "profiles" if args.profile else None
    workdir = Path(tempfile.mkdtemp(prefix="fluxo-bench-"))
    failed = False
    with servers() as found:
        say(f"Kafka at {found.kafka}, PostgreSQL ready")
        bench = Bench(found, plan, workdir, deadline=time.time() + RUN_BUDGET_S - (time.monotonic() - say.began))
        phases = asyncio.run(run_phases(bench, args.phases, profile_dir, say))
        machine = describe(found.kafka_description, found.postgres_description)
    failed = any("error" in result for result in phases.values())
    if failed:
        say(f"some phases failed; service logs kept in {workdir / 'logs'}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    measured_at = started.isoformat(timespec="seconds")
    previous = results.read(out_dir / "latest.json") if len(args.phases) < len(PHASES) else None
    merged, when = results.merge(previous, phases, measured_at)
    run = {
        "started_at": measured_at,
        "seconds": round(time.monotonic() - say.began, 1),
        "quick": plan.quick,
        "profiled": args.profile,
        "phases_run": args.phases,
        "phase_measured_at": when,
        "loadavg_start": loadavg_start,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "command": shlex.join(["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])]),
    }
    document = results.compose(merged, run, machine, previous)
    latest, dated = results.write(out_dir, document, started)
    say(f"wrote {latest} and {dated}")
    if not args.no_report and not plan.quick and not args.profile:
        current = args.doc.read_text() if args.doc.exists() else "# Benchmarks\n"
        args.doc.write_text(report.update_document(current, report.render(document)))
        say(f"updated {args.doc}")
    _print_targets(document)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
