"""Kafka plumbing shared by every service: clients, topic creation, the
consume-handle-produce-commit loop and the dead-letter path."""

from shared.kafka.clients import make_consumer, make_producer
from shared.kafka.loop import BatchLoop
from shared.kafka.messages import Handler, HandlerResult, Outgoing, Rejected

__all__ = [
    "BatchLoop",
    "Handler",
    "HandlerResult",
    "Outgoing",
    "Rejected",
    "make_consumer",
    "make_producer",
]
