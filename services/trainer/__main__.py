"""python -m services.trainer"""

from __future__ import annotations

import asyncio

from services.trainer.service import run
from services.trainer.settings import TrainerSettings
from shared.service import run_service
from shared.settings import load_settings


def main() -> None:
    settings = load_settings(TrainerSettings)

    async def entry(stop: asyncio.Event) -> None:
        await run(settings, stop)

    run_service(settings, entry)


if __name__ == "__main__":
    main()
