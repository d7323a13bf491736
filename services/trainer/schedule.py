"""Scheduled retraining: every TRAIN_INTERVAL seconds, each task of each
stream whose window holds new events and enough usable rows is trained with
its default algorithm."""

from __future__ import annotations

import asyncio

import structlog

from services.trainer.runs import RunRequest, Trainer
from services.trainer.window import StreamWindow
from shared.events import new_event_id
from shared.ml.dataset import task_data
from shared.streams import StreamSpec
from shared.streams.catalog import Catalog

log = structlog.get_logger(__name__)


def usable_rows(stream: StreamSpec, rows: list[dict]) -> dict[str, int]:
    return {task.name: task_data(stream, task, rows).rows for task in stream.tasks}


class Scheduler:
    def __init__(self, trainer: Trainer, catalog: Catalog, windows: dict[str, StreamWindow], interval: float,
                 min_rows: int, test_size: float) -> None:
        self.trainer = trainer
        self.catalog = catalog
        self.windows = windows
        self.interval = interval
        self.min_rows = min_rows
        self.test_size = test_size
        # (stream, task) -> window.appended when it was last trained
        self._trained_at: dict[tuple[str, str], int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``; only start it with a positive interval."""
        await self.trainer.window_ready.wait()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
                return
            except TimeoutError:
                pass
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - the next tick tries again (e.g. the database was down)
                log.warning("scheduled_training_failed", exc_info=True)

    async def tick(self) -> list[str]:
        """Train what is due; returns the run ids started."""
        started = []
        for name, window in list(self.windows.items()):
            if len(window) < self.min_rows or name not in self.catalog:
                continue
            stream = self.catalog.get(name)
            appended = window.appended
            due = [t for t in stream.tasks if self._trained_at.get((name, t.name)) != appended]
            if not due:
                continue
            rows, where = await self.trainer.window_rows(name)
            counts = await asyncio.to_thread(usable_rows, stream, rows)
            for task in due:
                if counts[task.name] < self.min_rows:
                    continue
                request = RunRequest(
                    run_id=new_event_id(), stream=name, task=task.name, test_size=self.test_size, trigger="schedule"
                )
                self._trained_at[(name, task.name)] = appended
                await self.trainer.execute(request, (rows, where))
                started.append(request.run_id)
        return started
