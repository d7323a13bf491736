"""fluxo: score, upload, train and watch through the Fluxo gateway from a terminal.

The gateway's address and API key come from --url / --api-key or the
FLUXO_URL / FLUXO_API_KEY environment variables.
"""

from __future__ import annotations

import argparse
import os
import sys

from services.cli import commands, export_commands, streams_commands
from services.cli.client import DEFAULT_URL, CliError, Gateway
from services.cli.output import err
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fluxo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("FLUXO_URL", DEFAULT_URL),
                        help=f"gateway address (env FLUXO_URL, default {DEFAULT_URL})")
    parser.add_argument("--api-key", default=os.environ.get("FLUXO_API_KEY"),
                        help="API key for the commands that change something, and downloads (env FLUXO_API_KEY)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for one HTTP answer")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        child = sub.add_parser(name, help=help_text, description=help_text)
        child.add_argument("--json", action="store_true", help="print the gateway's JSON answer")
        return child

    predict = command("predict", "score one record: any stream and task, or the original /predict")
    predict.add_argument("values", nargs="*", metavar="NAME=VALUE", help="the record's inputs")
    predict.add_argument("--stream", help="the stream (default: the original /predict route)")
    predict.add_argument("--task", help="the task (may be left out when the stream has one)")

    regress = command("regress", "predicted value of one record through the original /regress route")
    regress.add_argument("values", nargs="*", metavar="NAME=VALUE", help="the record's inputs")

    send = command("send", "send one record to a stream (as a device would)")
    send.add_argument("values", nargs="+", metavar="NAME=VALUE", help="the record's fields")
    send.add_argument("--stream", required=True)
    send.add_argument("--event-id", help="your id for the record: resending it scores nothing twice")

    streams = sub.add_parser("streams", help="register, list, inspect, archive or infer streams")
    streams_sub = streams.add_subparsers(dest="streams_command", required=True, metavar="ACTION")

    def streams_command(name: str, help_text: str) -> argparse.ArgumentParser:
        child = streams_sub.add_parser(name, help=help_text, description=help_text)
        child.add_argument("--json", action="store_true", help="print the gateway's JSON answer")
        return child

    streams_command("list", "every stream and its version")
    show = streams_command("show", "one stream: its declaration, versions and task inputs")
    show.add_argument("name")
    create = streams_command("create", "register a stream (or a new version) from a YAML or JSON declaration")
    create.add_argument("file", help="a declaration file (- for standard input)")
    delete = streams_command("delete", "archive a stream: no more training or scoring, data and models kept")
    delete.add_argument("name")
    infer = streams_command("infer", "propose a declaration from a CSV or XLSX file")
    infer.add_argument("file", help="a .csv or .xlsx file")
    infer.add_argument("--target", required=True, help="the column to learn")
    infer.add_argument("--name", help="the stream's name (default: from the file name)")
    infer.add_argument("-o", "--output", help="write the declaration (YAML) to this file")

    upload = command("upload", "upload a CSV or XLSX file of a stream's records")
    upload.add_argument("file", help="a .csv or .xlsx file")
    upload.add_argument("--stream", required=True)
    upload.add_argument("--no-progress", action="store_true", help="no progress bar")
    upload.add_argument("--show-rejected", type=int, default=20, metavar="N", help="rejected rows to list")

    train = command("train", "train a model and wait for its metrics")
    train.add_argument("--stream", required=True)
    train.add_argument("--task", required=True)
    train.add_argument("--algorithm")
    window = train.add_mutually_exclusive_group()
    window.add_argument("--window", type=int, help="train on the newest N events")
    window.add_argument("--dataset-id", help="train on one uploaded dataset")
    window.add_argument("--source", help="train on the data lake: an export id, an s3:// URL or an absolute path")
    train.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a hyperparameter")
    train.add_argument("--test-size", type=float, default=0.2)
    train.add_argument("--force", action="store_true", help="activate even if worse than the active model")
    train.add_argument("--no-wait", action="store_true", help="print the run id and return")
    train.add_argument("--wait-timeout", type=float, default=900.0, help="seconds to wait for the run")
    train.add_argument("--poll", type=float, default=1.0, help="seconds between status checks")

    status = command("train-status", "status of a training run")
    status.add_argument("run_id")

    models = command("models", "models in the registry")
    models.add_argument("--stream")
    models.add_argument("--task")
    models.add_argument("--limit", type=int, default=50)

    download = command("download", "download a model's artifact, checking its sha256")
    download.add_argument("model_id", type=int)
    download.add_argument("-o", "--output", help="file to write (default model-ID.joblib)")

    export_commands.add_parsers(command)

    watch = command("watch", "print predictions or alerts as they arrive")
    watch.add_argument("kind", nargs="?", choices=["predictions", "alerts"], default="predictions")
    watch.add_argument("--stream")
    watch.add_argument("--task")
    watch.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    watch.add_argument("--count", type=int, default=0, help="stop after N rows (0: never)")
    watch.add_argument("--from-start", action="store_true", help="also print the rows already there")
    watch.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: never)")
    return parser


def run(args: argparse.Namespace) -> int:
    gateway = Gateway(args.url, args.api_key, args.timeout)
    try:
        match args.command:
            case "predict":
                return commands.predict(gateway, args)
            case "regress":
                return commands.regress(gateway, args)
            case "send":
                return commands.send(gateway, args)
            case "streams":
                return streams_commands.run(gateway, args)
            case "upload":
                return commands.upload(gateway, args)
            case "train":
                return commands.train(gateway, args)
            case "train-status":
                return commands.train_status(gateway, args)
            case "models":
                return commands.models(gateway, args)
            case "download":
                return commands.download(gateway, args)
            case "watch":
                return commands.watch(gateway, args)
            case "export":
                return export_commands.export(gateway, args)
            case "export-status":
                return export_commands.export_status(gateway, args)
        raise CliError(f"unknown command {args.command}", code=2)
    finally:
        gateway.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except CliError as error:
        err.print(f"fluxo: {error}", markup=False)
        return error.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
