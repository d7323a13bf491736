"""python -m services.exporter"""

from __future__ import annotations

import asyncio

from services.exporter.service import run
from services.exporter.settings import ExporterSettings
from shared.service import run_service
from shared.settings import load_settings


def main() -> None:
    settings = load_settings(ExporterSettings)

    async def entry(stop: asyncio.Event) -> None:
        await run(settings, stop)

    run_service(settings, entry)


if __name__ == "__main__":
    main()
