"""``fluxo export`` and ``fluxo export-status``: the data lake on demand."""

from __future__ import annotations

import argparse
from typing import Any

from services.cli.client import Gateway
from services.cli.follow import follow
from services.cli.output import out, print_json, table


def add_parsers(command: Any) -> None:
    """The two subcommands, on the parser factory of services.cli.__main__."""
    export = command("export", "export streams to the data lake (Parquet) and wait for the files")
    export.add_argument("--stream", action="append", default=[], help="a stream to export (repeat; default: all)")
    export.add_argument("--kind", action="append", default=[],
                        help="features, predictions, alerts or history (repeat; default: all)")
    export.add_argument("--no-wait", action="store_true", help="print the export id and return")
    export.add_argument("--wait-timeout", type=float, default=900.0, help="seconds to wait for the export")
    export.add_argument("--poll", type=float, default=1.0, help="seconds between status checks")
    status = command("export-status", "status of an export and its files")
    status.add_argument("export_id")


def export(gateway: Gateway, args: argparse.Namespace) -> int:
    accepted = gateway.json("POST", "/v1/exports", json={"streams": args.stream, "kinds": args.kind})
    export_id = accepted["id"]
    found = follow(gateway, args, accepted, what="export", job_id=export_id, status_path=f"/v1/exports/{export_id}",
                   status_command="export-status", waiting_for="exporter")
    if found is None:
        return 0
    return _report(found, args.json)


def export_status(gateway: Gateway, args: argparse.Namespace) -> int:
    return _report(gateway.json("GET", f"/v1/exports/{args.export_id}"), args.json, final=False)


def _report(found: dict[str, Any], as_json: bool, final: bool = True) -> int:
    if as_json:
        print_json(found)
    else:
        where = f" to {found['destination']}" if found.get("destination") else ""
        out.print(f"export {found['id']} ({found['trigger']}){where}: {found['status']}, "
                  f"{found['files']} files, {found['rows']} rows")
        if found.get("error"):
            out.print(f"error: {found['error']}")
        if found.get("parts"):
            table(None, ["stream", "kind", "files", "rows", "dates"],
                  [[p["stream"], p["kind"], p["files"], p["rows"], f"{p['first_date']} .. {p['last_date']}"]
                   for p in found["parts"]])
    return 1 if final and found["status"] == "failed" else 0
