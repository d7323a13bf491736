"""What the gateway's lifespan owns and every route reads."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import Request

from services.gateway.cache import ModelCache
from services.gateway.settings import GatewaySettings
from shared.topics import Topics


@dataclass
class GatewayState:
    settings: GatewaySettings
    topics: Topics
    producer: AIOKafkaProducer
    pool: asyncpg.Pool
    cache: ModelCache


def get_state(request: Request) -> GatewayState:
    return request.app.state.gateway
