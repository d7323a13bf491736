"""Training: seconds to fit every algorithm of every task on 10k, 100k and
1M rows of its stream's generator data, the ONNX export (conversion and the
held-out check), and the bundle's size on disk.

Fits use the trainer's own functions and default hyperparameters, one
thread each: the task's matrix is shared.ml.dataset.task_data's (built a
chunk of rows at a time, bench.datasets.TaskSample), handed to
shared.ml.training.train as fit_rows does; only train is timed. Sizes go
smallest first, each stream's rows grown from the previous size's (the
generation seconds recorded per size are those of the growth). Before a
fit, its time is projected from the same algorithm's fit at the previous
size (linear in rows; n log n for random forests), and each size's fits run
cheapest first. A fit projected beyond the per-fit cap, or beyond what is
left of the phase's budget (less the projected time to generate its rows,
for a stream's first fit at a size), is not run and is recorded with the
projection as the reason. MLP epochs are capped at the largest size (said
in the row).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import joblib

from bench.context import Bench
from bench.datasets import TaskSample
from shared.ml.bundle import write_bundle
from shared.ml.dataset import TaskData
from shared.ml.export import export
from shared.ml.publish import bundle_meta
from shared.ml.training import TrainResult, train
from shared.streams import Algorithm, StreamSpec, TaskSpec, builtin_streams


def projection(previous: dict[str, Any] | None, rows: int, epochs_cap: int | None, *,
               n_log_n: bool = False) -> float | None:
    """Seconds a fit at ``rows`` is expected to take, from the previous size's
    fit: linear in rows (times log rows for a forest's sorting splits), and
    scaled down by an epoch cap below the iterations the previous fit ran."""
    if previous is None or previous.get("status") != "run":
        return None
    seconds = previous["fit_s"] * rows / previous["rows"]
    if n_log_n:
        seconds *= math.log(rows) / math.log(previous["rows"])
    iterations = previous.get("iterations")
    if epochs_cap is not None and iterations:
        seconds *= min(1.0, epochs_cap / iterations)
    return seconds


def _bundle_size(stream: str, result: TrainResult, onnx_bytes: bytes) -> int:
    meta = bundle_meta(stream, result, 1, {"bench": "synthetic"})
    scratch = Path(tempfile.mkdtemp(prefix="bench-bundle-"))
    try:
        _, _, size = write_bundle(scratch, meta, onnx_bytes, partial(joblib.dump, result.pipeline))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return size


def fit_one(stream: str, task: TaskSpec, algorithm: Algorithm, data: TaskData,
            hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """Fit and export one model on ``data`` (shared.ml.dataset.task_data's
    matrix: what fit_rows hands to train), timing each step."""
    began = time.perf_counter()
    result = train(task, algorithm, data.X, data.y, hyperparameters, seed=0,
                   inputs=data.inputs, classes=data.classes, positive=data.positive)
    fit_s = time.perf_counter() - began
    began = time.perf_counter()
    onnx_bytes, _ = export(result)
    export_s = time.perf_counter() - began
    model = result.pipeline.named_steps["model"]
    metric = task.gate_metric
    record: dict[str, Any] = {
        "status": "run",
        "rows": data.rows,
        "fit_s": round(fit_s, 3),
        "export_s": round(export_s, 3),
        "onnx_bytes": len(onnx_bytes),
        "bundle_bytes": _bundle_size(stream, result, onnx_bytes),
        "metric": metric,
        "metric_value": round(float(result.metrics.get(metric, float("nan"))), 4),
    }
    iterations = getattr(model, "n_iter_", None)
    if iterations is not None and algorithm in (Algorithm.MLP, Algorithm.KMEANS):
        record["iterations"] = int(iterations)
    if hyperparameters:
        record["hyperparameters"] = hyperparameters
    return record


def _jobs() -> list[tuple[StreamSpec, TaskSpec, Algorithm]]:
    return [(stream, task, algorithm) for stream in builtin_streams() for task in stream.tasks
            for algorithm in task.allowed_algorithms]


async def training(bench: Bench) -> dict[str, Any]:
    plan = bench.plan
    started = time.monotonic()
    budget_end = min(started + plan.training_budget_s, bench.deadline)
    largest = max(plan.training_sizes)
    rows_out: list[dict[str, Any]] = []
    previous: dict[tuple[str, str, str], dict[str, Any]] = {}
    generation: dict[str, float] = {}
    # Each stream's rows, grown to each size in turn (a size's rows start with the smaller size's).
    samples = {stream.name: TaskSample(stream) for stream in builtin_streams()}
    for size in sorted(plan.training_sizes):
        planned = []
        for stream, task, algorithm in _jobs():
            key = (stream.name, task.name, algorithm.value)
            capped = algorithm is Algorithm.MLP and size == largest and size > min(plan.training_sizes)
            expected = projection(previous.get(key), size, plan.mlp_epochs_cap if capped else None,
                                  n_log_n=algorithm is Algorithm.RANDOM_FOREST)
            planned.append((expected or 0.0, stream, task, algorithm, capped, expected))
        # Cheapest first: a budget running out then leaves out the fewest fits.
        planned.sort(key=lambda job: job[0])
        for _, stream, task, algorithm, capped, expected in planned:
            key = (stream.name, task.name, algorithm.value)
            base = {"stream": stream.name, "task": task.name, "algorithm": algorithm.value, "size": size}
            sample = samples[stream.name]
            # The first fit of a stream at this size waits for its rows too.
            generating = sample.projected_seconds(size) or 0.0
            left = budget_end - time.monotonic() - generating
            reason = None
            if previous.get(key, {}).get("status") == "not run":
                reason = f"not run at {previous[key]['size']:,} rows either"
            elif expected is not None and expected > plan.training_fit_cap_s:
                reason = (f"projected {expected:.0f} s from the {previous[key]['rows']:,}-row fit, "
                          f"over the {plan.training_fit_cap_s:g} s per-fit cap")
            elif expected is not None and expected > left:
                reason = f"projected {expected:.0f} s, {max(left, 0):.0f} s left of the phase budget"
                if generating:
                    reason += f" once its rows are generated (projected {generating:.0f} s)"
            elif left <= 0:
                reason = "phase budget used up"
            if reason is not None:
                record = {**base, "status": "not run", "reason": reason}
                if expected is not None:
                    record["projected_s"] = round(expected, 1)
            else:
                if sample.records < size:
                    generation[f"{stream.name}/{size}"] = round(sample.grow(size), 2)
                params = {"epochs": plan.mlp_epochs_cap} if capped else {}
                record = {**base, **fit_one(stream.name, task, algorithm, sample.data(task.name), params)}
                if expected is not None:
                    record["projected_s"] = round(expected, 1)
            previous[key] = record
            rows_out.append(record)
    return {
        "runs": rows_out,
        "data_generation_s": generation,
        "seconds": round(time.monotonic() - started, 1),
        "fit_cap_s": plan.training_fit_cap_s,
        "budget_s": plan.training_budget_s,
        "mlp_epochs_cap": plan.mlp_epochs_cap,
    }
