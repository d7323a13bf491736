"""Following a job the gateway queued (a training run, an export) until it
finishes: one loop for every command that waits."""

from __future__ import annotations

import argparse
import time
from typing import Any

from services.cli.client import CliError, Gateway
from services.cli.output import err, out, print_json

FINISHED = ("done", "failed")


def follow(gateway: Gateway, args: argparse.Namespace, accepted: dict[str, Any], *, what: str, job_id: str,
           status_path: str, status_command: str, waiting_for: str) -> dict[str, Any] | None:
    """The job's final status, or None when ``--no-wait`` asked to return at
    once (the answer is printed then). Status changes go to stderr; past
    ``--wait-timeout`` it gives up saying how to check later."""
    if args.no_wait:
        if args.json:
            print_json(accepted)
        else:
            out.print(f"{what} {job_id} queued; follow it: fluxo {status_command} {job_id}")
        return None
    err.print(f"{what} {job_id} queued; waiting for the {waiting_for}...")
    deadline = time.monotonic() + args.wait_timeout
    status = accepted["status"]
    while True:
        found = gateway.json("GET", status_path)
        if found["status"] != status:
            status = found["status"]
            err.print(f"{what} {job_id}: {status}")
        if status in FINISHED:
            return found
        if time.monotonic() > deadline:
            raise CliError(f"{what} {job_id} still {status} after {args.wait_timeout:g} s; "
                           f"check later with: fluxo {status_command} {job_id}")
        time.sleep(args.poll)
