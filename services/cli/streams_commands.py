"""``fluxo streams ...``: register, list, inspect, archive and infer streams."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from services.cli.client import CliError, Gateway
from services.cli.commands import content_type
from services.cli.output import out, print_json, table


def run(gateway: Gateway, args: argparse.Namespace) -> int:
    match args.streams_command:
        case "list":
            return list_streams(gateway, args)
        case "show":
            return show(gateway, args)
        case "create":
            return create(gateway, args)
        case "delete":
            return delete(gateway, args)
        case "infer":
            return infer(gateway, args)
    raise CliError(f"unknown action {args.streams_command}", code=2)


def list_streams(gateway: Gateway, args: argparse.Namespace) -> int:
    rows = gateway.json("GET", "/v1/streams")
    if args.json:
        print_json(rows)
        return 0
    table("streams", ["name", "version", "status", "fields", "tasks", "description"],
          [[s["name"], s["version"], s["status"], len(s["fields"]), ", ".join(s["tasks"]), s["description"][:60]]
           for s in rows])
    return 0


def show(gateway: Gateway, args: argparse.Namespace) -> int:
    body = gateway.json("GET", f"/v1/streams/{args.name}")
    if args.json:
        print_json(body)
        return 0
    out.print(f"{body['name']} version {body['version']} ({body['status']}); raw topic {body['topics']['raw']}")
    out.print(yaml.safe_dump(body["declaration"], sort_keys=False, allow_unicode=True).rstrip())
    for task, inputs in (body.get("inputs") or {}).items():
        names = [f"{i['name']}{'' if i.get('required', True) else '?'}" for i in inputs]
        out.print(f"inputs of {task}: {', '.join(names)}  (? = optional)")
    return 0


def create(gateway: Gateway, args: argparse.Namespace) -> int:
    if args.file == "-":
        content = sys.stdin.buffer.read()
    else:
        path = Path(args.file)
        if not path.is_file():
            raise CliError(f"no such file: {path}", code=2)
        content = path.read_bytes()
    response = gateway.request("POST", "/v1/streams", content=content,
                               headers={"Content-Type": "application/yaml"})
    body = response.json()
    if args.json:
        print_json(body)
        return 0
    what = "registered" if response.status_code == 201 else "unchanged (identical to the latest version)"
    out.print(f"stream {body['name']} version {body['version']}: {what}")
    out.print(f"send events to {body['topics']['raw']}, or: fluxo upload FILE --stream {body['name']}")
    return 0


def delete(gateway: Gateway, args: argparse.Namespace) -> int:
    body = gateway.json("DELETE", f"/v1/streams/{args.name}")
    if args.json:
        print_json(body)
        return 0
    out.print(f"stream {body['name']} archived (version {body['version']}); its data and models stay")
    return 0


def infer(gateway: Gateway, args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"no such file: {path}", code=2)
    form: dict[str, Any] = {"target": args.target}
    if args.name:
        form["name"] = args.name
    with path.open("rb") as handle:
        body = gateway.json("POST", "/v1/streams/infer", data=form,
                            files={"file": (path.name, handle, content_type(path))})
    if args.json:
        print_json(body)
        return 0
    text = yaml.safe_dump(body["declaration"], sort_keys=False, allow_unicode=True)
    if args.output:
        Path(args.output).write_text(text)
        out.print(f"wrote {args.output}: review it, then fluxo streams create {args.output}")
    else:
        out.print(text.rstrip())
    for item in body["ignored"]:
        out.print(f"ignored {item['column']}: {item['reason']}")
    for note in body["notes"]:
        out.print(f"note: {note}")
    return 0
