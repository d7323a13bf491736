"""What the gateway's lifespan owns and every route reads."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
from fastapi import Request

from services.gateway.features import RequestSchema
from services.gateway.settings import GatewaySettings
from shared.kafka.guarded import GuardedProducer
from shared.ml.served import ServedModels
from shared.streams.catalog import Catalog
from shared.topics import Topics


@dataclass
class GatewayState:
    settings: GatewaySettings
    topics: Topics
    # Every request path publishes through it: an answer within the request's
    # deadline, and nothing sent after a refusal (shared.kafka.guarded).
    publisher: GuardedProducer
    pool: asyncpg.Pool
    catalog: Catalog
    models: ServedModels
    _schemas: dict[tuple[str, str], RequestSchema] = field(default_factory=dict)

    def request_schema(self, stream: str, task: str) -> RequestSchema:
        """The request inputs of a task under the stream's current declaration (cached per version)."""
        spec = self.catalog.get(stream)
        schema = self._schemas.get((stream, task))
        if schema is None or schema.stream is not spec:
            schema = self._schemas[(stream, task)] = RequestSchema.of(spec, spec.task(task))
        return schema


def get_state(request: Request) -> GatewayState:
    return request.app.state.gateway
