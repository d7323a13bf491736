"""One-shot topic-init job: create every topic of a deployment, then exit.

    python -m deploy.topics

Runs before the services (compose: ``service_completed_successfully``), so
the built-in streams' topics get the partition count a deployment wants
instead of whatever the broker would auto-create (a stream registered later
gets its topics from the gateway, with 3 partitions each). The compacted topics (streams,
models, scalers, windows) and the single-partition ones keep their own partition count from
shared.topics. Existing topics are left alone, so the job is safe to rerun.
"""

from __future__ import annotations

import asyncio
import sys
import time

import structlog
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError
from pydantic import Field

from shared.kafka.admin import ensure_topics
from shared.logs import configure_logging
from shared.settings import ServiceSettings, load_settings
from shared.streams import builtin_streams
from shared.topics import Topics

log = structlog.get_logger(__name__)


class TopicInitSettings(ServiceSettings):
    service_name: str = "topic-init"
    topic_partitions: int = Field(6, ge=1, le=1000, description="Partitions of each per-stream topic.")
    topic_init_timeout: float = Field(
        120.0, gt=0, description="Seconds to keep retrying while the broker is not reachable yet."
    )


async def missing_topics(bootstrap_servers: str, wanted: list[str]) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="fluxo-topic-init")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    return [name for name in wanted if name not in existing]


async def init_topics(
    bootstrap_servers: str,
    prefix: str,
    *,
    partitions: int = 6,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
    timeout: float = 120.0,
) -> list[str]:
    """Create the deployment's missing topics; returns the names created.

    Retries until ``timeout`` because a broker that has just passed its
    healthcheck may still refuse metadata requests for a moment.
    """
    topics = Topics(prefix).all(spec.name for spec in builtin_streams())
    names = [name for name, _ in topics]
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        try:
            created = await ensure_topics(
                bootstrap_servers,
                topics,
                partitions=partitions,
                replication_factor=replication_factor,
                min_insync_replicas=min_insync_replicas,
            )
            # Creation is asynchronous on the broker: only a listing proves it.
            if not await missing_topics(bootstrap_servers, names):
                return created
            raise KafkaConnectionError("created topics are not listed yet")
        except (KafkaError, OSError) as error:
            if time.monotonic() >= deadline:
                raise RuntimeError(f"could not create topics on {bootstrap_servers}: {error!r}") from error
            log.info("topic_init_retry", attempt=attempt, error=repr(error))
            await asyncio.sleep(min(0.5 * attempt, 5.0))


def main() -> int:
    settings = load_settings(TopicInitSettings)
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    try:
        created = asyncio.run(
            init_topics(
                settings.kafka_bootstrap_servers,
                settings.topic_prefix,
                partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication_factor,
                min_insync_replicas=settings.topic_min_insync_replicas,
                timeout=settings.topic_init_timeout,
            )
        )
    except RuntimeError as error:
        log.error("topic_init_failed", error=str(error))
        return 1
    log.info("topics_ready", created=created)
    return 0


if __name__ == "__main__":
    sys.exit(main())
