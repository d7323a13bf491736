"""Run a local Kafka broker, PostgreSQL server and S3 object store until interrupted.

    python -m shared.infra [--kafka-port N] [--pg-port N] [--s3-port N] [--only kafka|postgres|s3]
    python -m shared.infra --prepare [--only kafka|postgres|s3]

Prints KAFKA_BOOTSTRAP_SERVERS=..., DATABASE_URL=... and the S3_ENDPOINT_URL=...,
AWS_ACCESS_KEY_ID=..., AWS_SECRET_ACCESS_KEY=..., AWS_REGION=... lines to export
in another shell; Ctrl-C or SIGTERM stops the servers and deletes their data.
--prepare only fetches the broker jars, checks for (or installs) the
PostgreSQL server binaries and builds the S3 server, so later starts are
quick and offline.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from contextlib import ExitStack

from .kafka import LocalKafka, ensure_kafka_jars
from .postgres import LocalPostgres, find_server_bindir
from .s3 import LocalS3, ensure_s3_server

SERVERS = ("kafka", "postgres", "s3")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m shared.infra",
        description="Run a local Kafka broker, PostgreSQL server and S3 object store until interrupted.",
    )
    parser.add_argument("--kafka-port", type=int, help="broker port (default: a free one)")
    parser.add_argument("--pg-port", type=int, help="PostgreSQL port (default: a free one)")
    parser.add_argument("--s3-port", type=int, help="S3 server port (default: a free one)")
    parser.add_argument("--only", choices=SERVERS, help="start just one of them")
    parser.add_argument(
        "--prepare", action="store_true", help="fetch/install what the servers need, then exit"
    )
    return parser.parse_args(argv)


def prepare(only: str | None) -> None:
    """Make later starts quick: fetch the jars, find or install PostgreSQL,
    build the S3 server.

    A server given in the environment is used instead of a local one (by the
    tests too), so its prerequisites are not demanded.
    """
    if only in (None, "kafka"):
        if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            print("# Kafka: KAFKA_BOOTSTRAP_SERVERS is set, no jars needed")
        else:
            print(f"# Kafka jars: {ensure_kafka_jars()}")
    if only in (None, "postgres"):
        if os.environ.get("DATABASE_URL"):
            print("# PostgreSQL: DATABASE_URL is set, no server binaries needed")
        else:
            print(f"# PostgreSQL server binaries: {find_server_bindir()}")
    if only in (None, "s3"):
        if os.environ.get("S3_ENDPOINT_URL"):
            print("# S3: S3_ENDPOINT_URL is set, no server build needed")
        else:
            binary = ensure_s3_server(on_build=lambda note: print(f"# {note}", flush=True))
            print(f"# S3 server: {binary}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.prepare:
        try:
            prepare(args.only)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    # SIGTERM (process managers) stops like Ctrl-C. SIGINT is set too: shells
    # start background jobs with it ignored, and Python would keep it so.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    with ExitStack() as servers:
        try:
            if args.only in (None, "postgres"):
                postgres = servers.enter_context(LocalPostgres(args.pg_port))
                print(f"# {postgres.version}, data in {postgres.workdir}", file=sys.stderr)
                print(f"DATABASE_URL={postgres.dsn}", flush=True)
            if args.only in (None, "kafka"):
                kafka = servers.enter_context(LocalKafka(args.kafka_port))
                print(f"# Apache Kafka {kafka.version}, data in {kafka.workdir}", file=sys.stderr)
                print(f"KAFKA_BOOTSTRAP_SERVERS={kafka.bootstrap}", flush=True)
            if args.only in (None, "s3"):
                s3 = servers.enter_context(LocalS3(args.s3_port))
                print(f"# versitygw {s3.version}, data in {s3.data_dir}", file=sys.stderr)
                for name, value in s3.endpoint.environment().items():
                    print(f"{name}={value}", flush=True)
            print("# running; Ctrl-C to stop", file=sys.stderr, flush=True)
            while True:
                signal.pause()
        except KeyboardInterrupt:
            print("# stopping", file=sys.stderr, flush=True)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
