"""Run a local Kafka broker and PostgreSQL server until interrupted.

    python -m shared.infra [--kafka-port N] [--pg-port N] [--only kafka|postgres]

Prints KAFKA_BOOTSTRAP_SERVERS=... and DATABASE_URL=... lines to export in
another shell; Ctrl-C or SIGTERM stops both servers and deletes their data.
"""

from __future__ import annotations

import argparse
import signal
import sys
from contextlib import ExitStack
from types import FrameType

from .kafka import LocalKafka
from .postgres import LocalPostgres


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m shared.infra", description=__doc__.split("\n")[0])
    parser.add_argument("--kafka-port", type=int, default=None, help="broker port (default: a free one)")
    parser.add_argument("--pg-port", type=int, default=None, help="PostgreSQL port (default: a free one)")
    parser.add_argument("--only", choices=("kafka", "postgres"), help="start just one of the two")
    return parser.parse_args(argv)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # SystemExit unwinds through the ExitStack, so SIGTERM cleans up like Ctrl-C.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # Shells start background jobs with SIGINT ignored, and Python then keeps
    # it ignored; restore KeyboardInterrupt so `kill -INT` always works.
    signal.signal(signal.SIGINT, signal.default_int_handler)
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
