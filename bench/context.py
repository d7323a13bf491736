"""What every benchmark phase shares: the servers, a work directory, the
plan (sizes), fresh topic prefixes and fresh databases."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.plan import Plan
from shared.db import apply_migrations, create_pool
from shared.db.databases import fresh_database


@dataclass(frozen=True)
class Servers:
    kafka: str
    postgres_dsn: str
    kafka_description: str
    postgres_description: str


@contextmanager
def servers() -> Iterator[Servers]:
    """KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when set, else local throwaway servers."""
    with ExitStack() as stack:
        kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        kafka_text = "from KAFKA_BOOTSTRAP_SERVERS"
        if not kafka:
            from shared.infra.kafka import JVM_FLAGS, LocalKafka

            broker = stack.enter_context(LocalKafka())
            kafka = broker.bootstrap
            heap = next((flag for flag in JVM_FLAGS if flag.startswith("-Xmx")), "")
            kafka_text = f"local Apache Kafka {broker.version} (single KRaft node, JVM {heap})"
        dsn = os.environ.get("DATABASE_URL")
        pg_text = "from DATABASE_URL"
        if not dsn:
            from shared.infra.postgres import SERVER_SETTINGS, LocalPostgres

            server = stack.enter_context(LocalPostgres())
            dsn = server.dsn
            settings = " ".join(s for s in SERVER_SETTINGS if s != "-c" and not s.startswith(("listen_", "max_conn")))
            pg_text = f"local {server.version} ({settings})"
        yield Servers(kafka, dsn, kafka_text, pg_text)


@dataclass
class Bench:
    servers: Servers
    plan: Plan
    workdir: Path
    # Seconds since the epoch after which phases should wrap up.
    deadline: float = field(default_factory=lambda: time.time() + 900)

    @property
    def kafka(self) -> str:
        return self.servers.kafka

    @property
    def artifact_dir(self) -> Path:
        return self.workdir / "artifacts"

    def logdir(self, phase: str) -> Path:
        path = self.workdir / "logs" / phase
        path.mkdir(parents=True, exist_ok=True)
        return path

    @staticmethod
    def prefix(phase: str) -> str:
        """A fresh TOPIC_PREFIX: nothing left by another phase or run is read."""
        return f"bench-{phase}-{uuid.uuid4().hex[:8]}."

    @asynccontextmanager
    async def database(self, phase: str) -> AsyncIterator[str]:
        """A fresh database with the schema applied, dropped afterwards."""
        async with fresh_database(self.servers.postgres_dsn, f"bench_{phase}_{uuid.uuid4().hex[:8]}") as dsn:
            pool = await create_pool(dsn, max_size=1)
            try:
                await apply_migrations(pool)
            finally:
                await pool.close()
            yield dsn

