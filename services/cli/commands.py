"""What each ``fluxo`` subcommand does, given parsed arguments and a gateway client."""

from __future__ import annotations

import argparse
import hashlib
import time
from collections import deque
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from services.cli.client import CliError, Gateway
from services.cli.follow import follow
from services.cli.output import err, metrics_text, out, print_json, table
from services.cli.progress import ProgressReader

# Uploads smaller than this finish before a progress bar is worth drawing.
PROGRESS_FROM_BYTES = 1024 * 1024
SHA256_HEADER = "X-Content-SHA256"


def record(pairs: list[str]) -> dict[str, Any]:
    """NAME=VALUE arguments as a record; values go as written (the gateway
    checks and converts them: numbers, booleans, categories, timestamps)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise CliError(f"expected NAME=VALUE, got {pair!r}", code=2)
        values[name.strip().replace("-", "_")] = raw
    return values


def predict(gateway: Gateway, args: argparse.Namespace) -> int:
    if args.stream is None:
        body = gateway.json("POST", "/predict", json=record(args.values))
        if args.json:
            print_json(body)
            return 0
        out.print(f"category {body['category']}  (model {body['model_id']}, version {body['model_version']})")
        if body.get("center"):
            centre = ", ".join(f"{k}={v:.6g}" for k, v in body["center"].items())
            out.print(f"centre: {centre}")
        return 0
    request: dict[str, Any] = {"record": record(args.values)}
    if args.task:
        request["task"] = args.task
    body = gateway.json("POST", f"/v1/streams/{args.stream}/predict", json=request)
    if args.json:
        print_json(body)
        return 0
    row = body["predictions"][0]
    value = row.get("label") or f"{row['prediction']:.6g}"
    out.print(f"{body['stream']}/{body['task']}: {value}  (model {body['model_id']}, version {body['model_version']})")
    if row.get("probabilities"):
        out.print("probabilities: " + ", ".join(f"{k}={v:.3f}" for k, v in row["probabilities"].items()))
    return 0


def regress(gateway: Gateway, args: argparse.Namespace) -> int:
    body = gateway.json("POST", "/regress", json=record(args.values))
    if args.json:
        print_json(body)
        return 0
    out.print(f"{body['stream']}/{body['task']}: {body['prediction']:.6g}  "
              f"(model {body['model_id']}, version {body['model_version']})")
    return 0


def send(gateway: Gateway, args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"record": record(args.values)}
    if args.event_id:
        request["event_ids"] = [args.event_id]
    body = gateway.json("POST", f"/v1/streams/{args.stream}/events", json=request)
    if args.json:
        print_json(body)
        return 0
    out.print(f"sent to {body['topic']}: event {body['event_ids'][0]}")
    return 0


def upload(gateway: Gateway, args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"no such file: {path}", code=2)
    size = path.stat().st_size
    show = not args.json and not args.no_progress and size >= PROGRESS_FROM_BYTES
    with path.open("rb") as handle:
        if show:
            progress = Progress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                TimeRemainingColumn(), console=err, transient=False,
            )
            with progress:
                task_id = progress.add_task(f"uploading {path.name}", total=size)
                reader = ProgressReader(handle, progress, task_id)
                body = gateway.json("POST", "/upload", data={"stream": args.stream},
                                    files={"file": (path.name, reader, content_type(path))})
        else:
            body = gateway.json("POST", "/upload", data={"stream": args.stream},
                                files={"file": (path.name, handle, content_type(path))})
    if args.json:
        print_json(body)
        return 0
    out.print(f"dataset {body['dataset_id']}: {body['rows_accepted']} rows accepted, "
              f"{body['rows_rejected']} rejected (of {body['rows_total']}), published to {body['topic']}")
    if body["rejected"]:
        table("rejected rows", ["row", "field", "reason"],
              [[r["row"], r["field"], r["reason"]] for r in body["rejected"][: args.show_rejected]])
        hidden = body["rows_rejected"] - min(len(body["rejected"]), args.show_rejected)
        if hidden > 0:
            out.print(f"... and {hidden} more rejected rows (--json lists up to the gateway's limit)")
    if body["ignored_columns"]:
        out.print(f"ignored columns: {', '.join(body['ignored_columns'])}")
    return 0


def content_type(path: Path) -> str:
    if path.suffix.lower() in {".xlsx", ".xlsm"}:
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return "text/csv"


def _parameters(pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise CliError(f"--param expects name=value, got {pair!r}", code=2)
        try:
            values[name] = orjson.loads(raw)  # numbers, booleans, null, lists
        except orjson.JSONDecodeError:
            values[name] = raw  # a bare word is a string
    return values


def train(gateway: Gateway, args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"stream": args.stream, "task": args.task, "test_size": args.test_size,
                               "force": args.force, "hyperparameters": _parameters(args.param)}
    for name in ("algorithm", "window", "dataset_id", "source"):
        if getattr(args, name) is not None:
            request[name] = getattr(args, name)
    accepted = gateway.json("POST", "/train", json=request)
    run_id = accepted["run_id"]
    run = follow(gateway, args, accepted, what="run", job_id=run_id, status_path=f"/train/{run_id}",
                 status_command="train-status", waiting_for="trainer")
    if run is None:
        return 0
    return _report_run(run, args.json)


def train_status(gateway: Gateway, args: argparse.Namespace) -> int:
    return _report_run(gateway.json("GET", f"/train/{args.run_id}"), args.json, final=False)


def _report_run(run: dict[str, Any], as_json: bool, final: bool = True) -> int:
    failed = run["status"] == "failed"
    if as_json:
        print_json(run)
    else:
        out.print(f"run {run['run_id']} ({run['stream']}/{run['task']}, {run['algorithm'] or 'default algorithm'}): "
                  f"{run['status']}")
        if run.get("metrics") is not None:
            out.print(f"metrics: {metrics_text(run['metrics'])}")
        if run.get("decision"):
            out.print(f"decision: {run['decision']}")
        if run.get("model_id") is not None:
            out.print(f"model: {run['model_id']}")
        if run.get("error"):
            out.print(f"error: {run['error']}")
    return 1 if failed and final else 0


def models(gateway: Gateway, args: argparse.Namespace) -> int:
    params = {k: v for k, v in (("stream", args.stream), ("task", args.task)) if v is not None}
    rows = gateway.json("GET", "/models", params={**params, "limit": args.limit})
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        out.print("no models yet: upload data and run fluxo train --stream STREAM --task TASK")
        return 0
    table("models", ["id", "stream", "task", "version", "algorithm", "rows", "active", "metrics", "created"],
          [[m["id"], m["stream"], m["task"], m["version"], m["algorithm"], m["rows"],
            "yes" if m["active"] else "", metrics_text(m["metrics"]), m["created_at"][:19]] for m in rows])
    return 0


def download(gateway: Gateway, args: argparse.Namespace) -> int:
    response = gateway.request("GET", f"/models/{args.model_id}/download")
    expected = response.headers.get(SHA256_HEADER)
    actual = hashlib.sha256(response.content).hexdigest()
    if expected != actual:
        raise CliError(f"the download's sha256 {actual} does not match the gateway's {expected}; nothing written")
    target = Path(args.output or f"model-{args.model_id}.joblib")
    target.write_bytes(response.content)
    out.print(f"wrote {target} ({len(response.content)} bytes, sha256 {actual})")
    return 0


def _identity(kind: str, row: dict[str, Any]) -> tuple[Any, ...]:
    if kind == "predictions":
        return (row["event_id"], row["task"], row["model_version"])
    return (row["event_id"],)


def _line(kind: str, row: dict[str, Any]) -> str:
    if kind == "predictions":
        actual = f" actual={row['actual']:.6g}" if row.get("actual") is not None else ""
        if row.get("actual_label"):
            actual = f" actual={row['actual_label']}"
        value = row.get("label") or ("-" if row.get("prediction") is None else f"{row['prediction']:.6g}")
        return (f"{row['scored_at'][:23]} {row['stream']}/{row['task']} key={row['key']} "
                f"prediction={value}{actual} v{row['model_version']}")
    value = "-" if row.get("value") is None else f"{row['value']:.6g}"
    return (f"{row['created_at'][:23]} ALERT {row['stream']} key={row['key']} {row.get('area') or ''} "
            f"value={value} score={row['score']:.3f} v{row['model_version']}")


def watch(gateway: Gateway, args: argparse.Namespace) -> int:
    """Poll the gateway and print rows newer than the newest one at start."""
    kind = args.kind
    time_field = "scored_at" if kind == "predictions" else "created_at"
    params: dict[str, Any] = {"stream": args.stream} if args.stream else {}
    if kind == "predictions" and args.task:
        params["task"] = args.task
    # Rows committed out of order can land just behind the newest one seen,
    # so every poll looks back a little and skips rows already printed.
    overlap = timedelta(seconds=5)
    seen: set[tuple[Any, ...]] = set()
    order: deque[tuple[Any, ...]] = deque()
    newest: datetime | None = None

    def remember(row: dict[str, Any]) -> None:
        key = _identity(kind, row)
        seen.add(key)
        order.append(key)
        if len(order) > 100_000:
            seen.discard(order.popleft())

    def fetch() -> list[dict[str, Any]]:
        query = dict(params, limit=1000)
        if newest is not None:
            query["since"] = (newest - overlap).isoformat()
        return gateway.json("GET", f"/{kind}", params=query)

    if not args.from_start:
        first = gateway.json("GET", f"/{kind}", params=dict(params, limit=1))
        if first:
            newest = datetime.fromisoformat(first[0][time_field])
            for row in fetch():
                remember(row)
    err.print(f"watching {kind} at {gateway.url} (Ctrl-C to stop)")
    printed = 0
    deadline = time.monotonic() + args.duration if args.duration else None
    while True:
        for row in reversed(fetch()):
            if _identity(kind, row) in seen:
                continue
            remember(row)
            at = datetime.fromisoformat(row[time_field])
            newest = at if newest is None or at > newest else newest
            if args.json:
                print_json(row, lines=True)
            else:
                out.print(_line(kind, row))
            printed += 1
            if args.count and printed >= args.count:
                return 0
        if deadline is not None and time.monotonic() > deadline:
            if args.count:
                raise CliError(f"saw {printed} of {args.count} {kind} in {args.duration:g} s")
            return 0
        time.sleep(args.interval)
