"""python -m services.consumer"""

from __future__ import annotations

import asyncio

from services.consumer.service import run
from services.consumer.settings import ConsumerSettings
from shared.service import run_service
from shared.settings import load_settings


def main() -> None:
    settings = load_settings(ConsumerSettings)

    async def entry(stop: asyncio.Event) -> None:
        await run(settings, stop)

    run_service(settings, entry)


if __name__ == "__main__":
    main()
