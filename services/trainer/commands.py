"""Train commands from the commands topic, handled through BatchLoop.

Offsets are committed after the run finished (or failed with its reason),
so a trainer that dies mid-run trains again on restart; a command whose run
already finished is skipped. A message that is not a TrainCommand at all is
dead-lettered with the validation error.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from services.trainer.runs import RunRequest, Trainer
from shared.events import TrainCommand
from shared.kafka.messages import HandlerResult, Rejected
from shared.streams.catalog import Catalog

log = structlog.get_logger(__name__)


def parse_command(record: ConsumerRecord) -> TrainCommand | str:
    """The command, or why the message is not one."""
    try:
        return TrainCommand.model_validate_json(record.value or b"")
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "message"
        return f"not a train command: {where}: {first['msg']} ({error.error_count()} error(s))"


def is_mine(command: TrainCommand, serves: Callable[[str], bool], catalog: Catalog) -> bool:
    """Commands for this replica's streams, and for unknown streams (so
    someone records their failure; every replica records the same one)."""
    return serves(command.stream) or command.stream not in catalog


class CommandHandler:
    def __init__(self, trainer: Trainer, serves: Callable[[str], bool], catalog: Catalog) -> None:
        self.trainer = trainer
        self.serves = serves
        self.catalog = catalog

    async def __call__(self, records: list[ConsumerRecord]) -> HandlerResult:
        result = HandlerResult()
        for record in records:
            command = parse_command(record)
            if isinstance(command, str):
                result.rejected.append(Rejected(record, command))
                continue
            if not is_mine(command, self.serves, self.catalog):
                continue
            log.info("train_command", run_id=command.run_id, stream=command.stream, task=command.task)
            await self.trainer.execute(RunRequest.from_command(command))
        return result
