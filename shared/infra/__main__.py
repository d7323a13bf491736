"""Run a local Kafka broker (or cluster), PostgreSQL server and S3 object store until interrupted.

    python -m shared.infra [--brokers N] [--kafka-port N] [--pg-port N] [--s3-port N] [--only kafka|postgres|s3]
    python -m shared.infra --prepare [--only kafka|postgres|s3|chromium]

Prints KAFKA_BOOTSTRAP_SERVERS=..., DATABASE_URL=... and the S3_ENDPOINT_URL=...,
AWS_ACCESS_KEY_ID=..., AWS_SECRET_ACCESS_KEY=..., AWS_REGION=... lines to export
in another shell; Ctrl-C or SIGTERM stops the servers and deletes their data.

--brokers N     1 (default): one KRaft node, replication 1. More: a KRaft
                cluster of N broker+controller nodes (LocalKafkaCluster) with
                default.replication.factor=min(N, 3) and min.insync.replicas
                one less (3 brokers: 3 and 2); it also prints the
                TOPIC_REPLICATION_FACTOR=... and TOPIC_MIN_INSYNC_REPLICAS=...
                lines the services need to create their topics that way.
--kafka-port N  the (first) broker's port; a cluster's nodes take N, N+1, ...
                (default: free ports).
--pg-port N     PostgreSQL's port (default: a free one).
--s3-port N     the S3 server's port (default: a free one).
--only kafka|postgres|s3  start just one of them.
--prepare       only fetch the broker jars, check for (or install) the
                PostgreSQL server binaries and Chromium (for the web console's
                browser tests) and build the S3 server, so later starts are
                quick and offline.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from contextlib import ExitStack

from .chromium import chromium_version, find_chromium
from .kafka import LocalKafka, ensure_kafka_jars
from .kafka_cluster import LocalKafkaCluster
from .postgres import LocalPostgres, find_server_bindir
from .s3 import LocalS3, ensure_s3_server


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m shared.infra",
        description="Run a local Kafka broker and PostgreSQL server until interrupted.",
    )
    parser.add_argument(
        "--brokers", type=int, default=1, help="Kafka brokers; more than 1 starts a replicated cluster (default: 1)"
    )
    parser.add_argument(
        "--kafka-port", type=int, help="(first) broker port; a cluster's nodes take N, N+1, ... (default: free ones)"
    )
    parser.add_argument("--pg-port", type=int, help="PostgreSQL port (default: a free one)")
    parser.add_argument("--s3-port", type=int, help="S3 server port (default: a free one)")
    parser.add_argument(
        "--only",
        choices=("kafka", "postgres", "s3", "chromium"),
        help="start (or prepare) just one of them; chromium is only prepared, never started",
    )
    parser.add_argument(
        "--prepare", action="store_true", help="fetch/install what the servers need, then exit"
    )
    args = parser.parse_args(argv)
    if args.brokers < 1:
        parser.error("--brokers must be at least 1")
    if args.only == "chromium" and not args.prepare:
        parser.error("--only chromium goes with --prepare: Chromium is installed here, not run")
    return args


def prepare(only: str | None) -> None:
    """Make later starts quick: fetch the jars, find or install PostgreSQL and
    Chromium, build the S3 server.

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
    if only in (None, "chromium"):
        executable = find_chromium()
        print(f"# {chromium_version(executable)}: {executable}")
    if only in (None, "s3"):
        if os.environ.get("S3_ENDPOINT_URL"):
            print("# S3: S3_ENDPOINT_URL is set, no server build needed")
        else:
            binary = ensure_s3_server(on_build=lambda note: print(f"# {note}", flush=True))
            print(f"# S3 server: {binary}")


def start_kafka(servers: ExitStack, brokers: int, port: int | None) -> None:
    if brokers == 1:
        kafka = servers.enter_context(LocalKafka(port))
        print(f"# Apache Kafka {kafka.version}, data in {kafka.workdir}", file=sys.stderr)
        print(f"KAFKA_BOOTSTRAP_SERVERS={kafka.bootstrap}", flush=True)
        return
    ports = None if port is None else [port + offset for offset in range(brokers)]
    cluster = servers.enter_context(LocalKafkaCluster(brokers, ports=ports))
    print(
        f"# Apache Kafka {cluster.version}, {brokers} nodes (broker+controller each), data in {cluster.workdir}",
        file=sys.stderr,
    )
    print(f"KAFKA_BOOTSTRAP_SERVERS={cluster.bootstrap}", flush=True)
    print(f"TOPIC_REPLICATION_FACTOR={cluster.replication_factor}", flush=True)
    print(f"TOPIC_MIN_INSYNC_REPLICAS={cluster.min_insync_replicas}", flush=True)


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
                start_kafka(servers, args.brokers, args.kafka_port)
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
